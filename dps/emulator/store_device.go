package emulator

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/keys"
)

// Store methods of the device and hub APIs.

// symmetricGroup is a symmetric-key enrollment group with its keys parsed.
type symmetricGroup struct {
	dps.EnrollmentGroup
	primary, secondary keys.Key
}

// groupCache holds the parsed symmetric-key groups, valid while the groups'
// IDs and ETags (which change on every write) are what they were.
type groupCache struct {
	log    *slog.Logger // says which groups are damaged, once per reload
	mu     sync.Mutex
	sig    string
	groups []symmetricGroup
}

// symmetricGroups returns every symmetric-key group in ID order (DPS allows
// at most 100, so the device API can try them all). Each call checks the
// cache against one cheap query instead of decoding every group.
func (s *store) symmetricGroups(ctx context.Context, c *groupCache) ([]symmetricGroup, error) {
	var sig string
	if err := s.r.QueryRowContext(ctx, `SELECT coalesce(group_concat(id_key || ' ' || etag, ','), '') FROM (SELECT id_key, etag FROM groups ORDER BY id_key)`).Scan(&sig); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.groups != nil && sig == c.sig {
		return c.groups, nil
	}
	rows, err := s.r.QueryContext(ctx, `SELECT id_key, doc FROM groups ORDER BY id_key`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []symmetricGroup{}
	for rows.Next() {
		var id string
		var doc []byte
		if err := rows.Scan(&id, &doc); err != nil {
			return nil, err
		}
		g, err := decodeGroup(id, doc)
		if err != nil {
			// Only this group's devices are refused; the others register.
			if c.log != nil {
				c.log.Error("device API: a damaged enrollment group admits no device", "err", err)
			}
			continue
		}
		if pk, sk, ok := attestationKeys(g.Attestation); ok {
			out = append(out, symmetricGroup{EnrollmentGroup: g, primary: pk, secondary: sk})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// A write between the two queries only makes the next call reload.
	c.sig, c.groups = sig, out
	return out, nil
}

// registrationByOperation finds the record an operation produced.
func (s *store) registrationByOperation(ctx context.Context, opID string) (registration, error) {
	r, err := scanRegistration(s.r.QueryRowContext(ctx, `SELECT `+registrationColumns+` FROM registrations WHERE operation_id = ?`, opID))
	if errors.Is(err, sql.ErrNoRows) {
		return r, errNotFound
	}
	return r, err
}

// assignment is everything one registration writes, committed together:
// the record, the device identity in the assigned hub, and the removal of
// the identity from the hub the device leaves.
type assignment struct {
	rec       registration
	device    *hubDevice // nil when the registration failed; carries the initial twin
	removeHub int        // linkedHub.Index to remove removeID from; 0 for none
	removeID  string
	// keepHub/keepID name the identity whose twin the device keeps
	// (reprovisioning that migrates data, or never reprovisions); 0 = the
	// device gets device's initial twin. An identity that is gone (deleted
	// from its hub) leaves nothing to keep, so the initial twin applies.
	keepHub int
	keepID  string
}

// commitAssignment writes a registration: the record, the device identity
// in the assigned hub, and the removal from the hub the device leaves, in
// one transaction (the store's group commit shares its fsync with others).
func (s *store) commitAssignment(ctx context.Context, a assignment) (registration, error) {
	rec := a.rec
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if a.device != nil && a.keepHub != 0 {
			d := *a.device
			err := tx.QueryRowContext(ctx, `SELECT tags, desired, reported FROM hub_devices WHERE hub = ? AND device_id = ?`, a.keepHub, a.keepID).Scan(&d.Tags, &d.Desired, &d.Reported)
			switch {
			case err == nil:
				a.device = &d
			case !errors.Is(err, sql.ErrNoRows):
				return err
			}
		}
		if a.removeHub != 0 && (a.device == nil || a.removeHub != a.device.Hub || a.removeID != a.device.DeviceID) {
			if _, err := tx.ExecContext(ctx, `DELETE FROM hub_devices WHERE hub = ? AND device_id = ?`, a.removeHub, a.removeID); err != nil {
				return err
			}
		}
		if a.device != nil {
			if _, err := s.putHubDeviceTx(ctx, tx, *a.device); err != nil {
				return err
			}
		}
		var err error
		rec, err = s.putRegistrationTx(ctx, tx, a.rec)
		return err
	})
	return rec, err
}

// countMessage records one device-to-cloud message.
func (s *store) countMessage(ctx context.Context, hub int, deviceID string) error {
	res, err := s.exec(ctx, `UPDATE hub_devices SET message_count = message_count + 1, last_activity = ? WHERE hub = ? AND device_id = ?`,
		time.Now().UnixNano(), hub, deviceID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errNotFound
	}
	return nil
}

// deleteHubDevice removes an identity; ifMatch as for the other deletes.
func (s *store) deleteHubDevice(ctx context.Context, hub int, deviceID, ifMatch string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var etag string
		err := tx.QueryRowContext(ctx, `SELECT etag FROM hub_devices WHERE hub = ? AND device_id = ?`, hub, deviceID).Scan(&etag)
		if errors.Is(err, sql.ErrNoRows) {
			return errNotFound
		}
		if err != nil {
			return err
		}
		if !ifMatchOK(ifMatch, etag) {
			return errPrecondition
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM hub_devices WHERE hub = ? AND device_id = ?`, hub, deviceID)
		return err
	})
}

// hubDevices lists a hub's identities after the device-ID cursor; next is
// the cursor of the following page, "" on the last.
func (s *store) hubDevices(ctx context.Context, hub int, after string, limit int) (out []hubDevice, next string, err error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+hubDeviceColumns+`
		FROM hub_devices WHERE hub = ? AND device_id > ? ORDER BY device_id LIMIT ?`, hub, after, limit+1)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	for rows.Next() {
		if len(out) == limit {
			next = out[len(out)-1].DeviceID
			break
		}
		d, err := scanHubDevice(rows, hub)
		if err != nil {
			return nil, "", err
		}
		out = append(out, d)
	}
	return out, next, rows.Err()
}
