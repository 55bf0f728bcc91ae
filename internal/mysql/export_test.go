package mysql

// LoadsData reports whether db still inserts orders with LOAD DATA LOCAL
// INFILE (the server has not refused it).
func LoadsData(db *DB) bool { return !db.noLocalInfile.Load() }

// DisableLoadData makes db insert orders with INSERT, as it does once a
// server refused LOAD DATA LOCAL INFILE.
func DisableLoadData(db *DB) { db.noLocalInfile.Store(true) }
