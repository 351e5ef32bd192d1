package emulator

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// twinDoc is the writable part of a device twin, decoded for an edit.
type twinDoc struct {
	Tags, Desired, Reported map[string]any
}

// twinChange edits a twin in place; an error leaves the twin as it was.
type twinChange func(*twinDoc) error

// The hub device read and the twin write, prepared statements: every
// direct method, twin read and reported patch runs them.
const (
	sqlHubTwinSelect = `SELECT ` + hubDeviceColumns + ` FROM hub_devices WHERE hub = ? AND device_id = ?`
	sqlHubTwinUpdate = `UPDATE hub_devices SET tags = ?, desired = ?, reported = ?, desired_version = ?, reported_version = ?, twin_version = ?
		WHERE hub = ? AND device_id = ?`
)

// updateHubTwin applies change to deviceID's twin in one transaction, if
// ifMatch (as for the other writes) matches the twin's ETag, and refuses a
// twin past the hub's size limits (checkTwinSizes). The twin
// version goes up when anything changed, the desired or reported $version
// when that set did; an edit that changes nothing writes nothing.
func (s *store) updateHubTwin(ctx context.Context, hub int, deviceID, ifMatch string, change twinChange) (hubDevice, error) {
	var d hubDevice
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		d, err = scanHubDevice(s.txQueryRow(ctx, tx, sqlHubTwinSelect, hub, deviceID), hub)
		if errors.Is(err, sql.ErrNoRows) {
			return errNotFound
		}
		if err != nil {
			return err
		}
		if !ifMatchOK(ifMatch, twinETag(d.TwinVersion)) {
			return errPrecondition
		}
		doc := twinDoc{twinCollection(d.Tags), twinCollection(d.Desired), twinCollection(d.Reported)}
		if err := change(&doc); err != nil {
			return err
		}
		tags, desired, reported := collectionJSON(doc.Tags), collectionJSON(doc.Desired), collectionJSON(doc.Reported)
		if err := checkTwinSizes(tags, desired, reported); err != nil {
			return err
		}
		if tags == d.Tags && desired == d.Desired && reported == d.Reported {
			return nil
		}
		if desired != d.Desired {
			d.DesiredVersion++
		}
		if reported != d.Reported {
			d.ReportedVersion++
		}
		d.TwinVersion++
		d.Tags, d.Desired, d.Reported = tags, desired, reported
		_, err = s.txExec(ctx, tx, sqlHubTwinUpdate, d.Tags, d.Desired, d.Reported, d.DesiredVersion, d.ReportedVersion, d.TwinVersion, hub, deviceID)
		return err
	})
	return d, err
}

// touchHubDevice records activity of a device (its connecting).
func (s *store) touchHubDevice(ctx context.Context, hub int, deviceID string) error {
	res, err := s.exec(ctx, `UPDATE hub_devices SET last_activity = ? WHERE hub = ? AND device_id = ?`, time.Now().UnixNano(), hub, deviceID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errNotFound
	}
	return nil
}
