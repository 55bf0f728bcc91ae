package bench

import (
	"context"
	"fmt"

	_ "github.com/go-sql-driver/mysql" // the driver behind sqlx.Open("mysql")
	"github.com/jmoiron/sqlx"
)

// MySQLOrders reads orders from the seckill_order table (CONTRACT §7).
type MySQLOrders struct {
	DSN string // go-sql-driver DSN, as FLASHGATE_MYSQL_DSN
}

// Orders returns every row of seckill_order for the items, whatever its
// status.
func (m MySQLOrders) Orders(ctx context.Context, itemIDs []int64) ([]Order, error) {
	if len(itemIDs) == 0 {
		return []Order{}, nil
	}
	db, err := sqlx.Open("mysql", m.DSN)
	if err != nil {
		return nil, fmt.Errorf("open mysql: %w", err)
	}
	defer db.Close()
	q, args, err := sqlx.In(`SELECT order_id, item_id, user_id, status FROM seckill_order WHERE item_id IN (?)`, itemIDs)
	if err != nil {
		return nil, fmt.Errorf("build orders query: %w", err)
	}
	orders := []Order{}
	if err := db.SelectContext(ctx, &orders, q, args...); err != nil {
		return nil, fmt.Errorf("read seckill_order: %w", err)
	}
	return orders, nil
}
