package dps

import (
	"context"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
)

const registrationsPath = "/registrations"

// GetRegistrationState reads the registration record of a device.
func (c *Client) GetRegistrationState(ctx context.Context, registrationID string) (DeviceRegistrationState, error) {
	path, err := idPath(registrationsPath, "registration ID", registrationID)
	if err != nil {
		return DeviceRegistrationState{}, err
	}
	return call[DeviceRegistrationState](ctx, c, "GetRegistrationState", http.MethodGet, path, nil, nil)
}

// DeleteRegistrationState deletes a device's registration record (not its
// enrollment, and not its hub identity).
func (c *Client) DeleteRegistrationState(ctx context.Context, registrationID string, opts *WriteOptions) error {
	path, err := idPath(registrationsPath, "registration ID", registrationID)
	if err != nil {
		return err
	}
	return c.callNoContent(ctx, "DeleteRegistrationState", http.MethodDelete, path, opts)
}

// RegistrationStatePage is one page of a registration-record query.
type RegistrationStatePage struct {
	Items []DeviceRegistrationState
	// ContinuationToken fetches the next page; "" on the last one.
	ContinuationToken string
}

// registrationQueryPath is where a group's records are queried. The
// 2021-10-01 spec gives this query no body (the CLI sends none).
func registrationQueryPath(groupID string) (string, error) {
	return idPath(registrationsPath, "enrollment group ID", groupID, "query")
}

// NewRegistrationStatePager lists the registration records of the devices
// admitted by one enrollment group (the group need not exist any more).
func (c *Client) NewRegistrationStatePager(groupID string, opts *PagerOptions) *runtime.Pager[RegistrationStatePage] {
	path, err := registrationQueryPath(groupID)
	return newQueryPager(c, "NewRegistrationStatePager", path, err, noQuery, opts, decodeRegistrationStates,
		func(items []DeviceRegistrationState, token string) RegistrationStatePage {
			return RegistrationStatePage{Items: items, ContinuationToken: token}
		},
		func(p RegistrationStatePage) string { return p.ContinuationToken })
}
