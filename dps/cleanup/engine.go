// Package cleanup finds registration records that no live enrollment reaches
// any more (orphans, typically left behind by a deleted enrollment group) and
// deletes them, with their hub device identities when asked, safely, fast,
// resumably and within the service's throttling. It is the engine behind
// `dpsconsole cleanup`, `dpsconsole groups delete --with-registrations` and
// the console's cleanup screen.
package cleanup

import (
	"context"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/hub"
)

// DPS is the part of *dps.Client the engine uses.
type DPS interface {
	Host() string
	NewEnrollmentGroupPager(*dps.PagerOptions) *runtime.Pager[dps.EnrollmentGroupPage]
	GetEnrollmentGroup(ctx context.Context, id string) (dps.EnrollmentGroup, error)
	DeleteEnrollmentGroup(ctx context.Context, id string, opts *dps.WriteOptions) error
	NewEnrollmentPager(*dps.PagerOptions) *runtime.Pager[dps.EnrollmentPage]
	NewRegistrationStatePager(groupID string, opts *dps.PagerOptions) *runtime.Pager[dps.RegistrationStatePage]
	GetRegistrationState(ctx context.Context, id string) (dps.DeviceRegistrationState, error)
	DeleteRegistrationState(ctx context.Context, id string, opts *dps.WriteOptions) error
}

// Hub is the part of *hub.RegistryClient the engine uses.
type Hub interface {
	Host() string
	NewDevicePager(*hub.PagerOptions) *runtime.Pager[hub.DevicePage]
	DeleteDevice(ctx context.Context, deviceID string, opts *hub.DeleteOptions) error
}

// Engine scans one DPS instance (and the hubs linked to it whose registries
// the operator can read) and runs cleanup jobs against it.
type Engine struct {
	DPS      DPS
	Hubs     []Hub
	StateDir string // holds the known-groups journal and the job logs
}

// hub returns the linked hub client for a host name, or nil.
func (e *Engine) hub(host string) Hub {
	for _, h := range e.Hubs {
		if strings.EqualFold(h.Host(), host) {
			return h
		}
	}
	return nil
}

// Event is what Scan, PlanGroupDeletion and Run report while they work:
// ScanProgress, Progress or Failure. Events are sent on the caller's channel
// (which may be nil) and wait for the reader, so read until the call
// returns; once ctx ends, no more are sent.
type Event interface{ event() }

func (ScanProgress) event() {}
func (Progress) event()     {}
func (Failure) event()      {}

// send delivers ev unless ctx ends first.
func send(ctx context.Context, events chan<- Event, ev Event) {
	if events == nil {
		return
	}
	select {
	case events <- ev:
	case <-ctx.Done():
	}
}
