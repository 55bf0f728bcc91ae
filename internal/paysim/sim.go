package paysim

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/flashgate/flashgate/internal/alipay"
)

// GatewayPath is where the Sim serves the gateway: give the merchant client
// "http://" + addr + GatewayPath.
const GatewayPath = "/gateway.do"

// Errors of Pay and Cancel.
var (
	// ErrTradeNotExist: no page pay was opened for this out_trade_no.
	ErrTradeNotExist = errors.New("paysim: trade does not exist")
	// ErrTradeClosed: the trade was closed (cancelled, timed out or refunded).
	ErrTradeClosed = errors.New("paysim: trade is closed")
	// ErrTradePaid: Cancel of a trade already paid.
	ErrTradePaid = errors.New("paysim: trade is paid")
)

// Config sets up a Sim.
type Config struct {
	// AppID is the only app the Sim serves.
	AppID string
	// MerchantPublicKey checks the signature of every merchant request.
	MerchantPublicKey *rsa.PublicKey
	// AlipayPrivateKey signs what the Sim sends; nil makes a fresh 2048-bit
	// key, whose public half AlipayPublicKey returns.
	AlipayPrivateKey *rsa.PrivateKey
	// SellerID is the seller_id of notifies and returns; empty picks a
	// random 2088... id.
	SellerID string
	// NotifyBackoff holds the delays before the second, third... attempt of
	// a notify; after the last one the Sim gives up. Nil means
	// DefaultNotifyBackoff; an empty non-nil slice means one attempt only.
	NotifyBackoff []time.Duration
	// HTTPClient sends notifies; nil means a client with a 5s timeout.
	HTTPClient *http.Client
	// Logger receives one line per notify attempt; nil discards.
	Logger *slog.Logger
}

// DefaultNotifyBackoff is the dev retry schedule of notifies: 1s, 2s, 4s, 8s,
// 16s, then 30s three times, about two minutes in all.
func DefaultNotifyBackoff() []time.Duration {
	return []time.Duration{
		1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
		16 * time.Second, 30 * time.Second, 30 * time.Second, 30 * time.Second,
	}
}

// GenerateMerchantKey makes a 2048-bit merchant key for dev, when no
// FLASHGATE_ALIPAY_PRIVATE_KEY is configured.
func GenerateMerchantKey() (*rsa.PrivateKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generate merchant key: %w", err)
	}
	return key, nil
}

// Sim is an in-memory Alipay gateway. Its methods are safe for concurrent
// use. Close it (or let Run return) to stop pending notifies.
type Sim struct {
	cfg     Config
	key     *rsa.PrivateKey
	log     *slog.Logger
	client  *http.Client
	backoff []time.Duration
	pages   *template.Template
	handler http.Handler
	now     func() time.Time
	buyerID string

	// ctx ends pending notifies on Close; wg owns their goroutines.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	trades map[string]*trade // by out_trade_no
}

// New returns a Sim for cfg.
func New(cfg Config) (*Sim, error) {
	if cfg.AppID == "" {
		return nil, errors.New("new paysim: no app id")
	}
	if cfg.MerchantPublicKey == nil {
		return nil, errors.New("new paysim: no merchant public key")
	}
	s := &Sim{
		cfg:     cfg,
		key:     cfg.AlipayPrivateKey,
		log:     cfg.Logger,
		client:  cfg.HTTPClient,
		backoff: cfg.NotifyBackoff,
		now:     time.Now,
		trades:  make(map[string]*trade),
	}
	if s.key == nil {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("new paysim: generate alipay key: %w", err)
		}
		s.key = key
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: 5 * time.Second}
	}
	if s.backoff == nil {
		s.backoff = DefaultNotifyBackoff()
	}
	var err error
	if s.cfg.SellerID == "" {
		if s.cfg.SellerID, err = alipayID(); err != nil {
			return nil, fmt.Errorf("new paysim: %w", err)
		}
	}
	if s.buyerID, err = alipayID(); err != nil {
		return nil, fmt.Errorf("new paysim: %w", err)
	}
	if s.pages, err = parsePages(); err != nil {
		return nil, fmt.Errorf("new paysim: %w", err)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.handler = s.routes()
	return s, nil
}

// AlipayPublicKey is the key that checks everything the Sim signs: the
// merchant's FLASHGATE_ALIPAY_PUBLIC_KEY in dev.
func (s *Sim) AlipayPublicKey() *rsa.PublicKey { return &s.key.PublicKey }

// Handler serves the gateway, the cashier page and the /sim endpoints.
func (s *Sim) Handler() http.Handler { return s.handler }

// Run serves on ln until ctx is done, then shuts the server down gracefully
// and waits for pending notifies to stop. It closes ln.
func (s *Sim) Run(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		s.Close()
		return fmt.Errorf("serve paysim: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	<-served
	s.Close()
	if err != nil {
		return fmt.Errorf("shut down paysim: %w", err)
	}
	return nil
}

// Close stops pending notify retries and waits for their goroutines. The
// handler keeps answering, but sends no more notifies.
func (s *Sim) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// Trade is what the Sim knows of one trade.
type Trade struct {
	OutTradeNo  string
	TradeNo     string
	Status      string
	TotalAmount string
	Subject     string
	// RefundFee is the total refunded so far.
	RefundFee string
	NotifyURL string
	ReturnURL string
	// Wap is true for a trade opened by alipay.trade.wap.pay; QuitURL is
	// its quit_url.
	Wap     bool
	QuitURL string
}

// Trade returns the trade of outTradeNo, if a page pay created it.
func (s *Sim) Trade(outTradeNo string) (Trade, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.trades[outTradeNo]
	if !ok {
		return Trade{}, false
	}
	s.expire(t)
	return t.snapshot(), true
}

// trade is the Sim's record, guarded by Sim.mu.
type trade struct {
	outTradeNo  string
	tradeNo     string
	subject     string
	totalCents  int64
	status      string
	notifyURL   string
	returnURL   string
	created     time.Time
	expires     time.Time // zero: never
	paid        time.Time
	closed      time.Time
	refunds     map[string]refund // by out_request_no
	refundCents int64
	wap         bool // opened by wap pay: phone cashier, wap return
	quitURL     string
}

type refund struct {
	cents int64
	at    time.Time
}

func (t *trade) snapshot() Trade {
	return Trade{
		OutTradeNo:  t.outTradeNo,
		TradeNo:     t.tradeNo,
		Status:      t.status,
		TotalAmount: alipay.FormatAmount(t.totalCents),
		Subject:     t.subject,
		RefundFee:   alipay.FormatAmount(t.refundCents),
		NotifyURL:   t.notifyURL,
		ReturnURL:   t.returnURL,
		Wap:         t.wap,
		QuitURL:     t.quitURL,
	}
}

// expire closes t when its timeout_express has passed unpaid. Call with s.mu.
func (s *Sim) expire(t *trade) {
	if t.status == alipay.TradeWaitBuyerPay && !t.expires.IsZero() && s.now().After(t.expires) {
		t.status = alipay.TradeClosed
		t.closed = t.expires
	}
}

// alipayID makes a 16-digit id in Alipay's 2088 range (user and partner ids).
func alipayID() (string, error) {
	return randomDigits("2088", 12)
}

// tradeNo makes a 28-digit trade number shaped like Alipay's: date, channel,
// random digits.
func (s *Sim) tradeNo() (string, error) {
	return randomDigits(s.now().In(alipay.Beijing()).Format("20060102")+"2200", 16)
}

func randomDigits(prefix string, n int) (string, error) {
	max := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
	v, err := rand.Int(rand.Reader, max)
	if err != nil {
		return "", fmt.Errorf("random id: %w", err)
	}
	return fmt.Sprintf("%s%0*d", prefix, n, v), nil
}
