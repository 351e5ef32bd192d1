package emulator

import (
	"context"
	"database/sql"
	"errors"
)

// twinChange edits a twin's tags and desired properties in place; an error
// leaves the twin as it was.
type twinChange func(tags, desired map[string]any) error

// updateHubTwin applies change to deviceID's twin in one transaction, if
// ifMatch (as for the other writes) matches the twin's ETag. The twin
// version goes up when anything changed, the desired $version when the
// desired properties did; an edit that changes nothing writes nothing.
func (s *store) updateHubTwin(ctx context.Context, hub int, deviceID, ifMatch string, change twinChange) (hubDevice, error) {
	var d hubDevice
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		d, err = scanHubDevice(tx.QueryRowContext(ctx, `SELECT `+hubDeviceColumns+` FROM hub_devices WHERE hub = ? AND device_id = ?`, hub, deviceID), hub)
		if errors.Is(err, sql.ErrNoRows) {
			return errNotFound
		}
		if err != nil {
			return err
		}
		if !ifMatchOK(ifMatch, twinETag(d.TwinVersion)) {
			return errPrecondition
		}
		tags, desired := twinCollection(d.Tags), twinCollection(d.Desired)
		if err := change(tags, desired); err != nil {
			return err
		}
		newTags, newDesired := collectionJSON(tags), collectionJSON(desired)
		if newTags == d.Tags && newDesired == d.Desired {
			return nil
		}
		if newDesired != d.Desired {
			d.DesiredVersion++
		}
		d.TwinVersion++
		d.Tags, d.Desired = newTags, newDesired
		_, err = tx.ExecContext(ctx, `UPDATE hub_devices SET tags = ?, desired = ?, desired_version = ?, twin_version = ? WHERE hub = ? AND device_id = ?`,
			d.Tags, d.Desired, d.DesiredVersion, d.TwinVersion, hub, deviceID)
		return err
	})
	return d, err
}
