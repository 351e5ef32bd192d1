package emulator

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/keys"
)

// Demo seed, written once into a new data dir. It gives every screen of the
// console something real to show:
//   - mylegacydevices: the group of Microsoft's "legacy devices" tutorial,
//     with the tutorial's primary key, statically allocated to hub 1;
//   - hashed-fleet: a hashed group over both hubs with demoFleetSize assigned
//     devices, each on the hub the hashed policy picks and with its identity
//     (derived keys) in that hub;
//   - retired-sensors: registration records and hub devices of a group that
//     has since been deleted, the orphans the cleanup work finds.
//
// Records and hub devices are written straight into the store, as if the
// devices had registered: the seed must not depend on the device API.
const (
	TutorialGroupID  = "mylegacydevices"
	TutorialGroupKey = "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw=="
	DemoHashedGroup  = "hashed-fleet"
	DemoDeletedGroup = "retired-sensors"

	demoFleetSize   = 36
	demoRetiredSize = 12
)

func (e *Emulator) seedDemo(ctx context.Context) error {
	hub1 := e.hubs[0].HostName
	tutorial, err := e.store.putGroup(ctx, dps.EnrollmentGroup{
		EnrollmentGroupID: TutorialGroupID,
		Attestation: dps.AttestationMechanism{Type: dps.AttestationSymmetricKey, SymmetricKey: &dps.SymmetricKeyAttestation{
			PrimaryKey: TutorialGroupKey, SecondaryKey: dps.Secret(keys.GenerateKey().Base64()),
		}},
		Capabilities:       &dps.DeviceCapabilities{},
		ProvisioningStatus: dps.ProvisioningEnabled,
		ReprovisionPolicy:  &dps.ReprovisionPolicy{UpdateHubAssignment: true, MigrateDeviceData: true},
		AllocationPolicy:   dps.AllocationStatic,
		IoTHubs:            []string{hub1},
	}, "")
	if err != nil {
		return err
	}
	_ = tutorial

	hubNames := make([]string, len(e.hubs))
	for i, h := range e.hubs {
		hubNames[i] = h.HostName
	}
	fleet, err := e.store.putGroup(ctx, dps.EnrollmentGroup{
		EnrollmentGroupID: DemoHashedGroup,
		Attestation: dps.AttestationMechanism{Type: dps.AttestationSymmetricKey, SymmetricKey: &dps.SymmetricKeyAttestation{
			PrimaryKey: dps.Secret(keys.GenerateKey().Base64()), SecondaryKey: dps.Secret(keys.GenerateKey().Base64()),
		}},
		Capabilities:       &dps.DeviceCapabilities{},
		ProvisioningStatus: dps.ProvisioningEnabled,
		ReprovisionPolicy:  &dps.ReprovisionPolicy{UpdateHubAssignment: true, MigrateDeviceData: true},
		AllocationPolicy:   dps.AllocationHashed,
		IoTHubs:            hubNames,
		InitialTwin:        &dps.InitialTwin{Tags: dps.TwinCollection{"fleet": "demo"}},
	}, "")
	if err != nil {
		return err
	}
	// The deleted group's keys exist only long enough to give its devices
	// real derived keys.
	retired := dps.SymmetricKeyAttestation{PrimaryKey: dps.Secret(keys.GenerateKey().Base64()), SecondaryKey: dps.Secret(keys.GenerateKey().Base64())}

	start := time.Now().UTC().Add(-72 * time.Hour)
	return e.store.tx(ctx, func(tx *sql.Tx) error {
		if err := e.seedDevices(ctx, tx, DemoHashedGroup, "fleet-sensor", demoFleetSize, *fleet.Attestation.SymmetricKey, fleet.InitialTwin, start); err != nil {
			return err
		}
		return e.seedDevices(ctx, tx, DemoDeletedGroup, "retired-sensor", demoRetiredSize, retired, nil, start.Add(-30*24*time.Hour))
	})
}

// seedDevices writes n assigned registration records of a group, each on the
// hub the hashed policy picks for it (so registering again keeps the hub),
// and their hub identities with the derived keys and the group's initial twin.
func (e *Emulator) seedDevices(ctx context.Context, tx *sql.Tx, groupID, prefix string, n int, groupKeys dps.SymmetricKeyAttestation, twin *dps.InitialTwin, start time.Time) error {
	tags, desired := twinJSON(twin)
	primary, err := keys.ParseKey(groupKeys.PrimaryKey.Reveal())
	if err != nil {
		return err
	}
	secondary, err := keys.ParseKey(groupKeys.SecondaryKey.Reveal())
	if err != nil {
		return err
	}
	linked := make([]linkedHub, len(e.hubs))
	for i, h := range e.hubs {
		linked[i] = h.linkedHub
	}
	for i := range n {
		id := fmt.Sprintf("%s-%03d", prefix, i+1)
		h := e.hubs[hashedHub(id, linked).Index-1] // Index is 1-based listener order
		at := start.Add(time.Duration(i) * 7 * time.Minute)
		if _, err := e.store.putRegistrationTx(ctx, tx, registration{
			DeviceRegistrationState: dps.DeviceRegistrationState{
				RegistrationID: id, AssignedHub: h.HostName, DeviceID: id,
				Status: dps.StatusAssigned, Substatus: dps.SubstatusInitialAssignment,
				CreatedDateTimeUTC: at, LastUpdatedDateTimeUTC: at,
			},
			GroupID:     groupID,
			OperationID: "5." + newGUID()[:16] + "." + newGUID(),
		}); err != nil {
			return err
		}
		dp, _ := keys.DeriveDeviceKey(primary, id) // id is valid by construction
		ds, _ := keys.DeriveDeviceKey(secondary, id)
		if _, err := e.store.putHubDeviceTx(ctx, tx, hubDevice{Hub: h.Index, DeviceID: id, PrimaryKey: dp.Base64(), SecondaryKey: ds.Base64(), Tags: tags, Desired: desired}); err != nil {
			return err
		}
	}
	return nil
}

// SeedRegistrations adds n assigned registration records to group groupID
// (which need not exist), named "{groupID}-{i}", spread over the linked hubs,
// without hub identities. It is for benchmarks and tests of listings; it
// writes straight into the store in large transactions.
func (e *Emulator) SeedRegistrations(ctx context.Context, groupID string, n int) error {
	const batch = 10000
	now := time.Now().UTC()
	for done := 0; done < n; done += batch {
		err := e.store.tx(ctx, func(tx *sql.Tx) error {
			stmt, err := tx.PrepareContext(ctx, `INSERT INTO registrations(rid_key, `+registrationColumns+`, doc)
				VALUES(?, ?, ?, '', ?, ?, 'assigned', 'initialAssignment', 0, '', ?, '', ?, ?, '', ?)
				ON CONFLICT(rid_key) DO NOTHING`)
			if err != nil {
				return err
			}
			defer stmt.Close()
			for i := done; i < min(n, done+batch); i++ {
				st := dps.DeviceRegistrationState{
					RegistrationID: fmt.Sprintf("%s-%07d", groupID, i), AssignedHub: e.hubs[i%len(e.hubs)].HostName,
					Status: dps.StatusAssigned, Substatus: dps.SubstatusInitialAssignment,
					CreatedDateTimeUTC: now, LastUpdatedDateTimeUTC: now, ETag: newRegistrationETag(),
				}
				st.DeviceID = st.RegistrationID
				doc, err := registrationDoc(st)
				if err != nil {
					return err
				}
				if _, err := stmt.ExecContext(ctx, idKey(st.RegistrationID), st.RegistrationID, idKey(groupID), st.AssignedHub, st.DeviceID,
					st.ETag, now.UnixNano(), now.UnixNano(), doc); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// hashedHub is the hub the hashed allocation policy (allocation.go) gives a
// registration ID.
func hashedHub(registrationID string, linked []linkedHub) linkedHub {
	h, _ := rendezvous(registrationID, linked)
	return h
}

// AddHubDevice creates a device identity with new keys straight in the hub
// named hubHost, as `az iot hub device-identity create` does: a device DPS
// never provisioned, with no registration record. It is for tests of the
// clean-up's two-way reconciliation.
func (e *Emulator) AddHubDevice(ctx context.Context, hubHost, deviceID string) error {
	for _, h := range e.hubs {
		if strings.EqualFold(h.HostName, hubHost) {
			return e.store.tx(ctx, func(tx *sql.Tx) error {
				_, err := e.store.putHubDeviceTx(ctx, tx, hubDevice{Hub: h.Index, DeviceID: deviceID,
					PrimaryKey: keys.GenerateKey().Base64(), SecondaryKey: keys.GenerateKey().Base64()})
				return err
			})
		}
	}
	return fmt.Errorf("no linked hub named %q", hubHost)
}
