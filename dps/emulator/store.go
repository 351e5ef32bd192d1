package emulator

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite" // also registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/dpsconsole/dpsconsole/dps"
)

const dbFile = "emulator.db"

// Store errors the handlers map to HTTP statuses.
var (
	errNotFound     = errors.New("not found")
	errPrecondition = errors.New("the ETag in the request does not match the ETag of the existing resource, as per RFC7232")
	errExists       = errors.New("already exists")
)

// store is the emulator's state in SQLite. Reads go through a pool that WAL
// lets run beside the writer. Writes go through one connection and one
// goroutine (SQLite has one writer; queuing in Go beats spinning on
// SQLITE_BUSY) that commits them in groups: the writes waiting when a
// transaction starts share it and its fsync, each in its own savepoint, and
// each caller is answered only after the commit.
//
// Durability: WAL with synchronous=FULL fsyncs the log at every commit, so a
// write acknowledged to a client survives a process kill and a power loss.
type store struct {
	w, r   *sql.DB
	ws, rs stmtCache // prepared statements of hot paths: parsing costs as much as running them
	writes chan writeReq
	quit   chan struct{}
	done   chan struct{}
}

type writeReq struct {
	ctx  context.Context
	fn   func(*sql.Tx) error
	errc chan error
}

// maxGroupCommit bounds how many writes share one transaction.
const maxGroupCommit = 128

var errStoreClosed = errors.New("the emulator store is closed")

// schemaVersion is kept in PRAGMA user_version; a data dir of another
// version is refused with advice rather than half-read.
const schemaVersion = 3 // 2: device twins (hub_devices.tags, desired, twin_version); 3: reported, desired/reported $version

const schema = `
CREATE TABLE IF NOT EXISTS settings (
	name  TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
-- Enrollment groups and individual enrollments keep the wire document: doc
-- with the keys, public_doc as GET shows it (keys left out), so reads copy it
-- out. IDs are case-insensitive: id_key is the lower-cased ID, the documents
-- keep the casing they were given.
CREATE TABLE IF NOT EXISTS groups (
	id_key     TEXT PRIMARY KEY,
	etag       TEXT NOT NULL,
	created    INTEGER NOT NULL,
	doc        TEXT NOT NULL,
	public_doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS enrollments (
	id_key     TEXT PRIMARY KEY,
	etag       TEXT NOT NULL,
	created    INTEGER NOT NULL,
	doc        TEXT NOT NULL,
	public_doc TEXT NOT NULL
);
-- Registration records. group_key/enrollment_key name what admitted the device;
-- a record outlives its group, as in DPS.
CREATE TABLE IF NOT EXISTS registrations (
	rid_key         TEXT PRIMARY KEY,
	registration_id TEXT NOT NULL,
	group_key       TEXT NOT NULL DEFAULT '',
	enrollment_key  TEXT NOT NULL DEFAULT '',
	assigned_hub    TEXT NOT NULL DEFAULT '',
	device_id       TEXT NOT NULL DEFAULT '',
	status          TEXT NOT NULL,
	substatus       TEXT NOT NULL DEFAULT '',
	error_code      INTEGER NOT NULL DEFAULT 0,
	error_message   TEXT NOT NULL DEFAULT '',
	etag            TEXT NOT NULL,
	payload         TEXT NOT NULL DEFAULT '',
	created         INTEGER NOT NULL,
	updated         INTEGER NOT NULL,
	operation_id    TEXT NOT NULL DEFAULT '',
	doc             TEXT NOT NULL -- the service API's JSON of the record, so listings copy it out
);
CREATE INDEX IF NOT EXISTS registrations_by_group ON registrations(group_key, rid_key);
CREATE INDEX IF NOT EXISTS registrations_by_operation ON registrations(operation_id);
-- Linked IoT hubs, numbered from 1 in listener order.
CREATE TABLE IF NOT EXISTS hubs (
	idx              INTEGER PRIMARY KEY,
	host_name        TEXT NOT NULL,
	addr             TEXT NOT NULL,
	policy_name      TEXT NOT NULL,
	policy_key       TEXT NOT NULL,
	weight           INTEGER NOT NULL DEFAULT 1,
	apply_allocation INTEGER NOT NULL DEFAULT 1
);
-- Device identities in the hubs. IoT Hub device IDs are case-sensitive.
CREATE TABLE IF NOT EXISTS hub_devices (
	hub           INTEGER NOT NULL,
	device_id     TEXT NOT NULL,
	primary_key   TEXT NOT NULL,
	secondary_key TEXT NOT NULL DEFAULT '',
	etag          TEXT NOT NULL,
	generation_id TEXT NOT NULL,
	status        TEXT NOT NULL DEFAULT 'enabled',
	message_count INTEGER NOT NULL DEFAULT 0,
	last_activity INTEGER NOT NULL DEFAULT 0,
	created       INTEGER NOT NULL,
	updated       INTEGER NOT NULL,
	tags          TEXT NOT NULL DEFAULT '{}', -- the device twin: tags and desired properties as JSON objects
	desired       TEXT NOT NULL DEFAULT '{}',
	twin_version  INTEGER NOT NULL DEFAULT 1, -- goes up when tags or desired change
	reported         TEXT NOT NULL DEFAULT '{}', -- reported properties, written by the device
	desired_version  INTEGER NOT NULL DEFAULT 1, -- the $version of desired and of reported
	reported_version INTEGER NOT NULL DEFAULT 1,
	PRIMARY KEY (hub, device_id)
);
`

// openStore opens (creating when missing) the database in dir. fresh reports
// whether it was just created, so the caller knows to seed it. used says the
// dir has served an emulator before: then a missing database is refused, not
// made anew.
func openStore(dir string, used bool) (s *store, fresh bool, err error) {
	path := dir + string(os.PathSeparator) + dbFile
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist) && used:
		return nil, false, fmt.Errorf("emulator: the data dir %s holds the emulator's CA (%s) but no database (%s): its ID scope, keys and enrollments are not there. "+
			"To keep them, put %s back (with its -wal file, if it had one); to start afresh with a new ID scope, keys and CA, delete the data dir", dir, caCertFile, dbFile, dbFile)
	case errors.Is(err, os.ErrNotExist):
		fresh = true
		// Create it 0600 ourselves: it holds keys, and SQLite gives its -wal
		// and -shm files the database file's mode.
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, false, err
		}
		f.Close()
	case err != nil:
		return nil, false, fmt.Errorf("emulator: %w", err)
	case info.Size() == 0:
		// SQLite would take it for a new, empty database.
		return nil, false, damagedDB(path, errors.New("0 bytes"))
	}
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() +
		"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(FULL)&_pragma=foreign_keys(ON)&_txlock=immediate"
	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, false, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	r, err := sql.Open("sqlite", dsn+"&mode=ro")
	if err != nil {
		w.Close()
		return nil, false, err
	}
	n := max(4, runtime.GOMAXPROCS(0)*2)
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	s = &store{w: w, r: r, ws: stmtCache{db: w}, rs: stmtCache{db: r}, writes: make(chan writeReq), quit: make(chan struct{}), done: make(chan struct{})}
	go s.writer()
	newFile := fresh
	if !newFile {
		var v int
		if err := w.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil {
			s.close()
			if isDamage(err) {
				return nil, false, damagedDB(path, err)
			}
			return nil, false, fmt.Errorf("open the emulator database %s: %w", path, err)
		}
		if v == 0 { // no build of ours leaves version 0: nothing of ours is in it
			s.close()
			return nil, false, damagedDB(path, errors.New("it holds no emulator schema"))
		}
		if v != schemaVersion {
			s.close()
			return nil, false, fmt.Errorf("the emulator data in %s was made by another build of dpsconsole (schema %d, this build uses %d); delete that directory to start afresh", dir, v, schemaVersion)
		}
	}
	if _, err := w.Exec(schema); err != nil {
		s.close()
		return nil, false, fmt.Errorf("open the emulator database %s: %w", path, err)
	}
	if newFile {
		if _, err := w.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion)); err != nil {
			s.close()
			return nil, false, err
		}
	}
	if err := s.prepareWrites(context.Background()); err != nil {
		s.close()
		return nil, false, err
	}
	// A seed that did not finish leaves no "seeded" mark; treat it as fresh.
	if !fresh {
		var v string
		err := w.QueryRow(`SELECT value FROM settings WHERE name = 'created'`).Scan(&v)
		fresh = errors.Is(err, sql.ErrNoRows)
	}
	return s, fresh, nil
}

// damagedDB says the database cannot be used and what to do.
func damagedDB(path string, why error) error {
	return fmt.Errorf("emulator: the database %s is empty or damaged (%v), so the emulator's ID scope, keys and enrollments cannot be read; "+
		"put back a copy of it if you have one, or delete the data dir %s to start afresh", path, why, filepath.Dir(path))
}

// isDamage reports whether SQLite found a file that is not, or no longer,
// a database.
func isDamage(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	code := se.Code() & 0xff // the primary result code
	return code == sqlite3.SQLITE_NOTADB || code == sqlite3.SQLITE_CORRUPT
}

func (s *store) close() error {
	close(s.quit)
	<-s.done
	s.ws.close()
	s.rs.close()
	return errors.Join(s.r.Close(), s.w.Close())
}

// stmtCache prepares each query once per database handle. The write cache
// is filled at open only: preparing needs the one write connection, which the
// writer holds during a transaction.
type stmtCache struct {
	db *sql.DB
	m  sync.Map // query -> *sql.Stmt
}

func (c *stmtCache) get(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := c.m.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := c.m.LoadOrStore(query, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

func (c *stmtCache) close() {
	c.m.Range(func(_, st any) bool {
		st.(*sql.Stmt).Close()
		return true
	})
}

// Write statements of the hot paths, prepared at open.
const (
	sqlSavepoint  = `SAVEPOINT w`
	sqlRollbackTo = `ROLLBACK TO w`
	sqlRelease    = `RELEASE w`
)

// Registration and hub-device writes (the device API's hot path).
const (
	sqlRegistrationSelect = `SELECT registration_id, created FROM registrations WHERE rid_key = ?`
	sqlRegistrationUpsert = `INSERT INTO registrations(rid_key, ` + registrationColumns + `, doc)
		VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(rid_key) DO UPDATE SET group_key = excluded.group_key, enrollment_key = excluded.enrollment_key,
			assigned_hub = excluded.assigned_hub, device_id = excluded.device_id, status = excluded.status,
			substatus = excluded.substatus, error_code = excluded.error_code, error_message = excluded.error_message,
			etag = excluded.etag, payload = excluded.payload, updated = excluded.updated, operation_id = excluded.operation_id,
			doc = excluded.doc`
	sqlHubDeviceUpsert = `INSERT INTO hub_devices(hub, device_id, primary_key, secondary_key, etag, generation_id, status, created, updated, tags, desired, reported)
		VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(hub, device_id) DO UPDATE SET primary_key = excluded.primary_key, secondary_key = excluded.secondary_key,
			etag = excluded.etag, status = excluded.status, updated = excluded.updated,
			twin_version = twin_version + (tags <> excluded.tags OR desired <> excluded.desired OR reported <> excluded.reported),
			desired_version = desired_version + (desired <> excluded.desired),
			reported_version = reported_version + (reported <> excluded.reported),
			tags = excluded.tags, desired = excluded.desired, reported = excluded.reported
		RETURNING generation_id, created, message_count, last_activity, twin_version`
)

func docSelectSQL(table string) string {
	return `SELECT etag, created FROM ` + table + ` WHERE id_key = ?`
}
func docUpsertSQL(table string) string {
	return `INSERT INTO ` + table + `(id_key, etag, created, doc, public_doc) VALUES(?, ?, ?, ?, ?)
		ON CONFLICT(id_key) DO UPDATE SET etag = excluded.etag, doc = excluded.doc, public_doc = excluded.public_doc`
}
func etagSelectSQL(table, keyCol string) string {
	return `SELECT etag FROM ` + table + ` WHERE ` + keyCol + ` = ?`
}
func deleteSQL(table, keyCol string) string {
	return `DELETE FROM ` + table + ` WHERE ` + keyCol + ` = ?`
}

func (s *store) prepareWrites(ctx context.Context) error {
	qs := []string{sqlSavepoint, sqlRollbackTo, sqlRelease}
	for _, t := range []string{"groups", "enrollments"} {
		qs = append(qs, docSelectSQL(t), docUpsertSQL(t), etagSelectSQL(t, "id_key"), deleteSQL(t, "id_key"))
	}
	qs = append(qs, etagSelectSQL("registrations", "rid_key"), deleteSQL("registrations", "rid_key"),
		sqlRegistrationSelect, sqlRegistrationUpsert, sqlHubDeviceUpsert, sqlHubTwinSelect, sqlHubTwinUpdate)
	for _, q := range qs {
		if _, err := s.ws.get(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// txExec runs a statement inside the write transaction, prepared if it is
// one of the hot ones.
func (s *store) txExec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	if st, ok := s.ws.m.Load(query); ok {
		return tx.StmtContext(ctx, st.(*sql.Stmt)).ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, query, args...)
}

// txQueryRow is txExec for a one-row query.
func (s *store) txQueryRow(ctx context.Context, tx *sql.Tx, query string, args ...any) *sql.Row {
	if st, ok := s.ws.m.Load(query); ok {
		return tx.StmtContext(ctx, st.(*sql.Stmt)).QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, query, args...)
}

// queryRow runs a cached one-row read query.
func (s *store) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := s.rs.get(ctx, query)
	if err != nil {
		return s.r.QueryRowContext(ctx, query, args...) // reports the same error
	}
	return st.QueryRowContext(ctx, args...)
}

// tx runs fn in a write transaction and returns once it is committed. fn's
// changes are all or nothing; an error from fn undoes them and is returned.
func (s *store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	req := writeReq{ctx: ctx, fn: fn, errc: make(chan error, 1)}
	select {
	case s.writes <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.quit:
		return errStoreClosed
	}
	// Wait even if ctx ends now: the write may already be committed.
	return <-req.errc
}

// writer commits queued writes in groups until the store closes.
func (s *store) writer() {
	defer close(s.done)
	batch := make([]writeReq, 0, maxGroupCommit)
	for {
		select {
		case req := <-s.writes:
			batch = append(batch[:0], req)
		case <-s.quit:
			return
		}
	gather:
		for len(batch) < maxGroupCommit {
			select {
			case req := <-s.writes:
				batch = append(batch, req)
			default:
				break gather
			}
		}
		s.commitGroup(batch)
	}
}

func (s *store) commitGroup(batch []writeReq) {
	if len(batch) == 1 { // alone: no savepoint needed
		req := batch[0]
		tx, err := s.w.Begin()
		if err == nil {
			if err = req.fn(tx); err != nil {
				tx.Rollback()
			} else {
				err = tx.Commit()
			}
		}
		req.errc <- err
		return
	}
	errs := make([]error, len(batch))
	tx, err := s.w.Begin()
	if err == nil {
		for i, req := range batch {
			errs[i] = s.runSavepoint(tx, req)
		}
		err = tx.Commit()
	}
	for i, req := range batch {
		if err != nil {
			errs[i] = err
		}
		req.errc <- errs[i]
	}
}

// runSavepoint runs one write inside the group transaction, undoing just its
// own changes when it fails.
func (s *store) runSavepoint(tx *sql.Tx, req writeReq) error {
	if err := req.ctx.Err(); err != nil {
		return err
	}
	bg := context.Background()
	if _, err := s.txExec(bg, tx, sqlSavepoint); err != nil {
		return err
	}
	if err := req.fn(tx); err != nil {
		s.txExec(bg, tx, sqlRollbackTo)
		s.txExec(bg, tx, sqlRelease)
		return err
	}
	_, err := s.txExec(bg, tx, sqlRelease)
	return err
}

// exec runs one write statement through the group commit.
func (s *store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	var res sql.Result
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		res, err = tx.ExecContext(ctx, query, args...)
		return err
	})
	return res, err
}

// setting returns a setting, "" when unset.
func (s *store) setting(ctx context.Context, name string) (string, error) {
	var v string
	err := s.r.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v, err
}

func (s *store) setSetting(ctx context.Context, name, value string) error {
	return s.setSettings(ctx, map[string]string{name: value})
}

// setSettings writes settings in one transaction: all of them or none.
func (s *store) setSettings(ctx context.Context, settings map[string]string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		for name, value := range settings {
			if _, err := tx.ExecContext(ctx, `INSERT INTO settings(name, value) VALUES(?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value`, name, value); err != nil {
				return err
			}
		}
		return nil
	})
}

// ifMatchOK applies an If-Match value: empty, * and "*" mean no precondition;
// other values are compared with the current ETag with quotes trimmed.
func ifMatchOK(ifMatch, current string) bool {
	m := strings.Trim(strings.TrimSpace(ifMatch), `"`)
	return m == "" || m == "*" || m == strings.Trim(current, `"`)
}

// noPrecondition reports whether If-Match is absent or a wildcard.
func noPrecondition(ifMatch string) bool {
	m := strings.Trim(strings.TrimSpace(ifMatch), `"`)
	return m == "" || m == "*"
}

// newETag is a fresh ETag in Cosmos DB style: a quoted GUID, quotes included.
func newETag() string { return `"` + newGUID() + `"` }

// newRegistrationETag is the base64 form DPS uses for registration records.
func newRegistrationETag() string {
	return base64.StdEncoding.EncodeToString([]byte(newETag()))
}

func newGUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func idKey(id string) string { return strings.ToLower(id) }

// Enrollment groups and individual enrollments.

// stampFunc fills in the server-side fields of a document being written and
// returns its two JSON forms: with keys, and as GET shows it.
type stampFunc func(created, now time.Time, etag string) (doc, public []byte, err error)

// writeDoc creates or replaces a group or enrollment. With mustBeNew it fails
// with errExists if the ID is taken (bulk create); otherwise ifMatch applies.
func (s *store) writeDoc(ctx context.Context, table, id, ifMatch string, mustBeNew bool, stamp stampFunc) error {
	now := time.Now().UTC()
	return s.tx(ctx, func(tx *sql.Tx) error {
		var etag string
		var created int64
		err := s.txQueryRow(ctx, tx, docSelectSQL(table), idKey(id)).Scan(&etag, &created)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if !noPrecondition(ifMatch) {
				return errPrecondition
			}
			created = now.UnixNano()
		case err != nil:
			return err
		case mustBeNew:
			return errExists
		case !ifMatchOK(ifMatch, etag):
			return errPrecondition
		}
		etag = newETag()
		doc, public, err := stamp(time.Unix(0, created).UTC(), now, etag)
		if err != nil {
			return err
		}
		_, err = s.txExec(ctx, tx, docUpsertSQL(table),
			idKey(id), etag, created, doc, public)
		return err
	})
}

// putGroup creates or replaces a group (the caller has validated it), keeping
// its creation time, and returns it with a new ETag.
func (s *store) putGroup(ctx context.Context, g dps.EnrollmentGroup, ifMatch string) (dps.EnrollmentGroup, error) {
	return g, s.writeDoc(ctx, "groups", g.EnrollmentGroupID, ifMatch, false, stampGroup(&g))
}

// createGroup inserts a group that must not exist yet (bulk create).
func (s *store) createGroup(ctx context.Context, g dps.EnrollmentGroup) (dps.EnrollmentGroup, error) {
	return g, s.writeDoc(ctx, "groups", g.EnrollmentGroupID, "", true, stampGroup(&g))
}

func stampGroup(g *dps.EnrollmentGroup) stampFunc {
	return func(created, now time.Time, etag string) ([]byte, []byte, error) {
		g.CreatedDateTimeUTC, g.LastUpdatedDateTimeUTC, g.ETag = created, now, etag
		doc, err := json.Marshal(g)
		if err != nil {
			return nil, nil, err
		}
		public := *g
		public.Attestation.SymmetricKey = nil
		pub, err := json.Marshal(public)
		return doc, pub, err
	}
}

// group returns a group with its keys.
func (s *store) group(ctx context.Context, id string) (dps.EnrollmentGroup, error) {
	doc, err := s.doc(ctx, "groups", "doc", id)
	if err != nil {
		return dps.EnrollmentGroup{}, err
	}
	return decodeGroup(id, doc)
}

// damagedError is a stored row that no longer decodes. It breaks only its
// own resource, and says which one and how to mend it.
type damagedError struct {
	noun, id string // "enrollment group", "fleet-2"
	err      error
}

func (d *damagedError) Error() string {
	return fmt.Sprintf("%s %q is damaged in the emulator database (its stored document does not decode: %v); delete it and create it again",
		d.noun, d.id, d.err)
}

func (d *damagedError) Unwrap() error { return d.err }

// decodeAs decodes a stored document of resource id, a damagedError when it
// does not decode.
func decodeAs[T any](noun, id string, doc []byte) (T, error) {
	var v T
	if err := json.Unmarshal(doc, &v); err != nil {
		return v, &damagedError{noun, id, err}
	}
	return v, nil
}

func decodeGroup(id string, doc []byte) (dps.EnrollmentGroup, error) {
	return decodeAs[dps.EnrollmentGroup]("enrollment group", id, doc)
}

// docChecks say whether a stored document of each table can be sent as it
// is. Groups (a few hundred at most) are decoded as clients will decode them.
// The long listings get a framing check only: it catches a truncated or
// overwritten row for free, where json.Valid would cost 40 % of a 100,000
// record listing.
var docChecks = map[string]func(id string, doc []byte) error{
	"groups": func(id string, doc []byte) error {
		_, err := decodeGroup(id, doc)
		return err
	},
	"enrollments":   framedJSON("enrollment"),
	"registrations": framedJSON("registration record"),
}

func framedJSON(noun string) func(id string, doc []byte) error {
	return func(id string, doc []byte) error {
		if len(doc) < 2 || doc[0] != '{' || doc[len(doc)-1] != '}' {
			return &damagedError{noun, id, errors.New("not a JSON object")}
		}
		return nil
	}
}

// doc returns one stored JSON document (col doc or public_doc).
func (s *store) doc(ctx context.Context, table, col, id string) ([]byte, error) {
	var doc []byte
	err := s.queryRow(ctx, `SELECT `+col+` FROM `+table+` WHERE id_key = ?`, idKey(id)).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound
	}
	return doc, err
}

// docsPage is one page of stored documents, already the JSON array a listing
// sends: the next page's cursor ("" on the last) and the rows left out
// because they are damaged.
type docsPage struct {
	body    []byte // [doc,doc,...]
	next    string
	damaged []error
}

// publicDocs lists groups or enrollments as GET shows them, after the key
// cursor, in ID order.
func (s *store) publicDocs(ctx context.Context, table, after string, limit int) (docsPage, error) {
	return s.docPage(ctx, `SELECT id_key, public_doc FROM `+table+` WHERE id_key > ? ORDER BY id_key LIMIT ?`, docChecks[table], limit, after, limit+1)
}

// docPage runs a keyset page query selecting (key, document) rows, one more
// than limit to learn whether another page follows. A document check
// refuses is left out, so one damaged row does not break the listing. The
// documents are copied straight from SQLite's row into the page's body
// (sql.RawBytes): no string and no slice a record.
func (s *store) docPage(ctx context.Context, query string, check func(id string, doc []byte) error, limit int, args ...any) (docsPage, error) {
	var p docsPage
	st, err := s.rs.get(ctx, query)
	if err != nil {
		return p, err
	}
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return p, err
	}
	defer rows.Close()
	p.body = make([]byte, 0, 2+min(limit, 1024)*400) // records are about 300 bytes
	p.body = append(p.body, '[')
	var key, last, doc sql.RawBytes
	for n := 0; rows.Next(); n++ {
		if n == limit {
			p.next = string(last)
			break
		}
		if err := rows.Scan(&key, &doc); err != nil {
			return docsPage{}, err
		}
		last = append(last[:0], key...)
		if err := check(string(key), doc); err != nil {
			p.damaged = append(p.damaged, err)
			continue
		}
		if len(p.body) > 1 {
			p.body = append(p.body, ',')
		}
		p.body = append(p.body, doc...)
	}
	p.body = append(p.body, ']')
	return p, rows.Err()
}

func (s *store) deleteGroup(ctx context.Context, id, ifMatch string) error {
	return s.deleteDoc(ctx, "groups", "id_key", idKey(id), ifMatch)
}

func (s *store) deleteDoc(ctx context.Context, table, keyCol, key, ifMatch string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var etag string
		err := s.txQueryRow(ctx, tx, etagSelectSQL(table, keyCol), key).Scan(&etag)
		if errors.Is(err, sql.ErrNoRows) {
			return errNotFound
		}
		if err != nil {
			return err
		}
		if !ifMatchOK(ifMatch, etag) {
			return errPrecondition
		}
		_, err = s.txExec(ctx, tx, deleteSQL(table, keyCol), key)
		return err
	})
}

func (s *store) putEnrollment(ctx context.Context, e dps.IndividualEnrollment, ifMatch string) (dps.IndividualEnrollment, error) {
	return e, s.writeDoc(ctx, "enrollments", e.RegistrationID, ifMatch, false, stampEnrollment(&e))
}

func (s *store) createEnrollment(ctx context.Context, e dps.IndividualEnrollment) (dps.IndividualEnrollment, error) {
	return e, s.writeDoc(ctx, "enrollments", e.RegistrationID, "", true, stampEnrollment(&e))
}

func stampEnrollment(e *dps.IndividualEnrollment) stampFunc {
	return func(created, now time.Time, etag string) ([]byte, []byte, error) {
		e.RegistrationState = nil // read-only, joined in on reads
		e.CreatedDateTimeUTC, e.LastUpdatedDateTimeUTC, e.ETag = created, now, etag
		doc, err := json.Marshal(e)
		if err != nil {
			return nil, nil, err
		}
		public := *e
		public.Attestation.SymmetricKey = nil
		pub, err := json.Marshal(public)
		return doc, pub, err
	}
}

// enrollment returns an individual enrollment with its keys.
func (s *store) enrollment(ctx context.Context, registrationID string) (dps.IndividualEnrollment, error) {
	doc, err := s.doc(ctx, "enrollments", "doc", registrationID)
	if err != nil {
		return dps.IndividualEnrollment{}, err
	}
	return decodeAs[dps.IndividualEnrollment]("enrollment", registrationID, doc)
}

func (s *store) deleteEnrollment(ctx context.Context, registrationID, ifMatch string) error {
	return s.deleteDoc(ctx, "enrollments", "id_key", idKey(registrationID), ifMatch)
}

// Registration records.

// registration is a registration record: the wire state plus what admitted
// the device and the operation that produced it.
type registration struct {
	dps.DeviceRegistrationState
	GroupID      string // enrollment group that admitted the device, "" for an individual enrollment
	EnrollmentID string // individual enrollment that admitted the device
	OperationID  string
}

const registrationColumns = `registration_id, group_key, enrollment_key, assigned_hub, device_id, status, substatus,
	error_code, error_message, etag, payload, created, updated, operation_id`

type scanner interface{ Scan(...any) error }

func scanRegistration(row scanner) (registration, error) {
	var r registration
	var status, substatus, payload string
	var created, updated int64
	err := row.Scan(&r.RegistrationID, &r.GroupID, &r.EnrollmentID, &r.AssignedHub, &r.DeviceID, &status, &substatus,
		&r.ErrorCode, &r.ErrorMessage, &r.ETag, &payload, &created, &updated, &r.OperationID)
	if err != nil {
		return r, err
	}
	r.Status, r.Substatus = dps.RegistrationStatus(status), dps.Substatus(substatus)
	if payload != "" {
		r.Payload = json.RawMessage(payload)
	}
	r.CreatedDateTimeUTC = time.Unix(0, created).UTC()
	r.LastUpdatedDateTimeUTC = time.Unix(0, updated).UTC()
	return r, nil
}

// registration returns the record of a registration ID (case-insensitive).
func (s *store) registration(ctx context.Context, registrationID string) (registration, error) {
	r, err := scanRegistration(s.queryRow(ctx, `SELECT `+registrationColumns+` FROM registrations WHERE rid_key = ?`, idKey(registrationID)))
	if errors.Is(err, sql.ErrNoRows) {
		return r, errNotFound
	}
	return r, err
}

// putRegistration creates or replaces a record with a new ETag. An existing
// record keeps its first-seen casing and creation time.
func (s *store) putRegistration(ctx context.Context, r registration) (registration, error) {
	return r, s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		r, err = s.putRegistrationTx(ctx, tx, r)
		return err
	})
}

func (s *store) putRegistrationTx(ctx context.Context, tx *sql.Tx, r registration) (registration, error) {
	now := time.Now().UTC()
	var casing string
	var created int64
	err := s.txQueryRow(ctx, tx, sqlRegistrationSelect, idKey(r.RegistrationID)).Scan(&casing, &created)
	switch {
	case err == nil:
		r.RegistrationID, r.CreatedDateTimeUTC = casing, time.Unix(0, created).UTC()
	case !errors.Is(err, sql.ErrNoRows):
		return r, err
	case r.CreatedDateTimeUTC.IsZero():
		r.CreatedDateTimeUTC = now
	}
	if r.LastUpdatedDateTimeUTC.IsZero() {
		r.LastUpdatedDateTimeUTC = now
	}
	r.ETag = newRegistrationETag()
	doc, err := registrationDoc(r.DeviceRegistrationState)
	if err != nil {
		return r, err
	}
	_, err = s.txExec(ctx, tx, sqlRegistrationUpsert,
		idKey(r.RegistrationID), r.RegistrationID, idKey(r.GroupID), idKey(r.EnrollmentID), r.AssignedHub, r.DeviceID,
		string(r.Status), string(r.Substatus), r.ErrorCode, r.ErrorMessage, r.ETag, string(r.Payload),
		r.CreatedDateTimeUTC.UnixNano(), r.LastUpdatedDateTimeUTC.UnixNano(), r.OperationID, doc)
	return r, err
}

// registrationDoc is a record as the service API shows it (without the
// device API's symmetricKey note).
func registrationDoc(st dps.DeviceRegistrationState) (string, error) {
	st.SymmetricKey = nil
	b, err := json.Marshal(st)
	return string(b), err
}

func (s *store) deleteRegistration(ctx context.Context, registrationID, ifMatch string) error {
	return s.deleteDoc(ctx, "registrations", "rid_key", idKey(registrationID), ifMatch)
}

// registrationDocs lists the records admitted by a group, after the cursor,
// as their JSON documents: a listing copies them out without decoding.
func (s *store) registrationDocs(ctx context.Context, groupID, after string, limit int) (docsPage, error) {
	return s.docPage(ctx, `SELECT rid_key, doc FROM registrations
		WHERE group_key = ? AND rid_key > ? ORDER BY rid_key LIMIT ?`, docChecks["registrations"], limit, idKey(groupID), after, limit+1)
}

// Linked hubs.

// linkedHub is an IoT hub linked to the emulated DPS.
type linkedHub struct {
	Index           int    // 1-based, in listener order
	HostName        string // host:port, port left out when 443
	Addr            string // the listener address last used, to reuse its port
	PolicyName      string
	PolicyKey       string // base64
	Weight          int    // allocation weight, 1-1000
	ApplyAllocation bool   // whether allocation policies may choose this hub
}

func (s *store) linkedHubs(ctx context.Context) ([]linkedHub, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT idx, host_name, addr, policy_name, policy_key, weight, apply_allocation FROM hubs ORDER BY idx`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []linkedHub
	for rows.Next() {
		var h linkedHub
		if err := rows.Scan(&h.Index, &h.HostName, &h.Addr, &h.PolicyName, &h.PolicyKey, &h.Weight, &h.ApplyAllocation); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// saveLinkedHub stores a hub. When its host name changed (another port was
// free this time), records and enrollments that name the old host follow it.
func (s *store) saveLinkedHub(ctx context.Context, h linkedHub, oldHost string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO hubs(idx, host_name, addr, policy_name, policy_key, weight, apply_allocation)
			VALUES(?, ?, ?, ?, ?, ?, ?) ON CONFLICT(idx) DO UPDATE SET host_name = excluded.host_name, addr = excluded.addr`,
			h.Index, h.HostName, h.Addr, h.PolicyName, h.PolicyKey, h.Weight, h.ApplyAllocation); err != nil {
			return err
		}
		if oldHost == "" || strings.EqualFold(oldHost, h.HostName) {
			return nil
		}
		oldJSON, _ := json.Marshal(oldHost)
		newJSON, _ := json.Marshal(h.HostName)
		if _, err := tx.ExecContext(ctx, `UPDATE registrations SET assigned_hub = ?2,
			doc = replace(doc, ?3, ?4) WHERE assigned_hub = ?1`, oldHost, h.HostName, string(oldJSON), string(newJSON)); err != nil {
			return err
		}
		for _, table := range []string{"groups", "enrollments"} {
			if _, err := tx.ExecContext(ctx, `UPDATE `+table+` SET doc = replace(doc, ?1, ?2), public_doc = replace(public_doc, ?1, ?2)
				WHERE instr(doc, ?1) > 0`, string(oldJSON), string(newJSON)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Hub device identities.

// hubDevice is a device identity in a linked hub.
type hubDevice struct {
	Hub          int // linkedHub.Index
	DeviceID     string
	PrimaryKey   string // base64
	SecondaryKey string // base64
	ETag         string
	GenerationID string
	Status       string // enabled or disabled
	MessageCount int64
	LastActivity time.Time // zero until the first message
	Created      time.Time
	Updated      time.Time
	Tags         string // twin tags, a JSON object; "" = {}
	Desired      string // twin desired properties, a JSON object; "" = {}
	TwinVersion  int64
	Reported     string // twin reported properties, a JSON object; "" = {}
	// DesiredVersion and ReportedVersion are the $version of each.
	DesiredVersion, ReportedVersion int64
	// Not stored: whether an MQTT connection is open, and since when
	// (mqtt_twin.go withPresence).
	Connected         bool
	ConnectionChanged time.Time
}

// hubDeviceColumns are what scanHubDevice reads, in its order.
const hubDeviceColumns = `device_id, primary_key, secondary_key, etag, generation_id, status, message_count, last_activity, created, updated, tags, desired, twin_version, reported, desired_version, reported_version`

func scanHubDevice(row interface{ Scan(...any) error }, hub int) (hubDevice, error) {
	d := hubDevice{Hub: hub}
	var last, created, updated int64
	err := row.Scan(&d.DeviceID, &d.PrimaryKey, &d.SecondaryKey, &d.ETag, &d.GenerationID, &d.Status, &d.MessageCount, &last, &created, &updated,
		&d.Tags, &d.Desired, &d.TwinVersion, &d.Reported, &d.DesiredVersion, &d.ReportedVersion)
	if last != 0 {
		d.LastActivity = time.Unix(0, last).UTC()
	}
	d.Created, d.Updated = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	return d, err
}

// putHubDeviceTx creates or replaces an identity; a new identity gets a new
// generation ID, every write a new ETag.
func (s *store) putHubDeviceTx(ctx context.Context, tx *sql.Tx, d hubDevice) (hubDevice, error) {
	now := time.Now().UTC()
	if d.Status == "" {
		d.Status = "enabled"
	}
	if d.Tags == "" {
		d.Tags = "{}"
	}
	if d.Desired == "" {
		d.Desired = "{}"
	}
	if d.Reported == "" {
		d.Reported = "{}"
	}
	d.ETag = base64.StdEncoding.EncodeToString([]byte(newGUID()[:8]))
	d.Updated = now
	var created int64
	err := s.txQueryRow(ctx, tx, sqlHubDeviceUpsert,
		d.Hub, d.DeviceID, d.PrimaryKey, d.SecondaryKey, d.ETag, generationID(), d.Status, now.UnixNano(), now.UnixNano(), d.Tags, d.Desired, d.Reported,
	).Scan(&d.GenerationID, &created, &d.MessageCount, new(int64), &d.TwinVersion)
	d.Created = time.Unix(0, created).UTC()
	return d, err
}

// generationID looks like IoT Hub's: 18 decimal digits.
func generationID() string {
	var b [8]byte
	rand.Read(b[:])
	var n uint64
	for _, c := range b {
		n = n<<8 | uint64(c)
	}
	return fmt.Sprintf("%018d", n%1e18)
}

func (s *store) hubDevice(ctx context.Context, hub int, deviceID string) (hubDevice, error) {
	d, err := scanHubDevice(s.queryRow(ctx, sqlHubTwinSelect, hub, deviceID), hub) // every method call and twin read
	if errors.Is(err, sql.ErrNoRows) {
		return d, errNotFound
	}
	return d, err
}
