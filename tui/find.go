package tui

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	tea "charm.land/bubbletea/v2"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/keys"
	"github.com/dpsconsole/dpsconsole/tui/components/table"
)

// findRequest asks the root to look a registration up: `/` in a list sends
// it with a full ID. quiet: a miss says nothing (the filter still shows
// what it matches).
type findRequest struct {
	id    string
	quiet bool
}

// foundMsg is the answer to the latest lookup; an older one is dropped.
type foundMsg struct {
	gen     int
	id      string
	quiet   bool
	replace bool // :find, which replaces the views above home
	read    describeLoadedMsg
}

// find looks registration id up directly (GET /registrations/{id}: one
// round trip whatever the size of the DPS) and opens it; see found.
func (m *Model) find(id string, quiet, fromCommand bool) tea.Cmd {
	if id == "" {
		return flashWarn(":find needs a registration ID, e.g. :find sn-007-888")
	}
	if err := keys.ValidateRegistrationID(id); err != nil {
		if quiet {
			return nil
		}
		return flashErr(fmt.Errorf(":find %s: %v", id, err))
	}
	m.findGen++
	gen, t, ctx := m.findGen, m.c.Target, m.c.Ctx
	return func() tea.Msg {
		read := readDescribe(ctx, t, describeSubject{kind: describeRecord, id: id})
		return foundMsg{gen: gen, id: id, quiet: quiet, replace: fromCommand, read: read}
	}
}

// found opens the record looked up, read already. Not found: a message,
// and nothing else changes.
func (m *Model) found(msg foundMsg) tea.Cmd {
	if msg.gen != m.findGen {
		return nil // a later lookup outdates this one
	}
	if err := msg.read.err; err != nil {
		switch {
		case dps.IsNotFound(err) && msg.quiet:
			return nil
		case dps.IsNotFound(err):
			return flashWarn(fmt.Sprintf("no registration record has the ID %s on %s (looked up directly); check the ID: a device has a record only once it has registered", msg.id, m.c.Target.Name))
		}
		return flashErr(fmt.Errorf("finding %s: %s", msg.id, dps.ErrorMessage(err)))
	}
	v := newDescribeView(m.c, describeSubject{kind: describeRecord, id: msg.read.record.RegistrationID})
	v.loaded(msg.read)
	if msg.replace {
		return m.switchToView("find", v)
	}
	return m.push(v)
}

// groupResolvedMsg names the enrollment of a found record: its individual
// enrollment, or the group whose key derives its hub device's key.
type groupResolvedMsg struct {
	enrollment bool
	group      string
	err        error
}

// resolveGroup finds the enrollment of record r, which DPS's service API
// does not name: an individual enrollment of the same ID, else a
// symmetric-key group whose derived key is the one the device has on its
// hub (DPS gives the device that key). A read per group, never a scan of
// the records.
func resolveGroup(c *Common, to int, r dps.DeviceRegistrationState) tea.Cmd {
	t, ctx := c.Target, c.Ctx
	return do(to, func() tea.Msg {
		g, individual, err := enrollmentOf(ctx, t, r)
		return groupResolvedMsg{enrollment: individual, group: g, err: err}
	})
}

func enrollmentOf(ctx context.Context, t *Target, r dps.DeviceRegistrationState) (group string, individual bool, err error) {
	id := r.RegistrationID
	if _, err := t.Service.GetEnrollment(ctx, id); err == nil {
		return "", true, nil
	} else if !dps.IsNotFound(err) {
		return "", false, fmt.Errorf("looking for the enrollment of %s: %s", id, dps.ErrorMessage(err))
	}
	unknown := "registration record " + id + " does not name its enrollment group (DPS's records do not), and it has no individual enrollment; "
	if r.AssignedHub == "" {
		return "", false, errors.New(unknown + "with no assigned hub its device key cannot tell the group either")
	}
	reg, err := t.Registry(r.AssignedHub)
	if err != nil {
		return "", false, errors.New(unknown + "telling it by the device's key needs its hub: " + err.Error())
	}
	dev, err := reg.GetDevice(ctx, cmp.Or(r.DeviceID, id))
	if err != nil {
		return "", false, errors.New(unknown + "reading its hub device: " + dps.ErrorMessage(err))
	}
	if dev.Authentication == nil || dev.Authentication.SymmetricKey == nil {
		return "", false, errors.New(unknown + "its hub device has no symmetric key to tell the group by")
	}
	want := dev.Authentication.SymmetricKey.PrimaryKey.Reveal()
	pager := t.Service.NewEnrollmentGroupPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return "", false, fmt.Errorf("listing the enrollment groups: %s", dps.ErrorMessage(err))
		}
		for _, g := range page.Items {
			if g.Attestation.Type != dps.AttestationSymmetricKey {
				continue
			}
			att, err := t.Service.GetEnrollmentGroupAttestation(ctx, g.EnrollmentGroupID)
			if err != nil || att.SymmetricKey == nil {
				continue // a group deleted meanwhile, or without keys
			}
			if k, err := keys.DeriveDeviceKeyString(att.SymmetricKey.PrimaryKey.Reveal(), id); err == nil && k == want {
				return g.EnrollmentGroupID, false, nil
			}
		}
	}
	return "", false, errors.New(unknown + "no symmetric-key group's key derives its hub device's key (its group may be deleted: :cleanup finds such orphans)")
}

// findOnEnter is the direct lookup of `/`: enter on a filter that is a
// whole registration ID looks that record up, loaded or not. While the
// filter shows matches, a miss says nothing; it is a filter as well.
func findOnEnter[V any](t *table.Table[V], msg tea.KeyPressMsg) tea.Cmd {
	id := t.Query()
	if !t.Filtering() || msg.String() != "enter" || keys.ValidateRegistrationID(id) != nil {
		return nil
	}
	req := findRequest{id: id, quiet: t.Len() > 0}
	return func() tea.Msg { return req }
}
