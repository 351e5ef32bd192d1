package hub

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/dpsconsole/dpsconsole/dps"
)

// TwinPatch is what the service side writes to a twin: tags and desired
// properties. In UpdateTwin it is merged into the twin (a nil value removes
// that property); in ReplaceTwin it becomes the twin's tags and desired
// properties.
type TwinPatch struct {
	Tags       dps.TwinCollection   `json:"tags,omitempty"`
	Properties *TwinPatchProperties `json:"properties,omitempty"`
}

// TwinPatchProperties are the properties a TwinPatch writes; reported
// properties belong to the device.
type TwinPatchProperties struct {
	Desired dps.TwinCollection `json:"desired,omitempty"`
}

// TwinWriteOptions are the optional parts of UpdateTwin and ReplaceTwin.
type TwinWriteOptions struct {
	// IfMatch writes only over this twin version (Twin.ETag); nil writes
	// over any ("*").
	IfMatch *azcore.ETag
}

// UpdateTwin merges patch into a twin (PATCH /twins/{id}) and returns the
// twin as the hub now holds it.
func (c *RegistryClient) UpdateTwin(ctx context.Context, deviceID string, patch TwinPatch, opts *TwinWriteOptions) (Twin, error) {
	return c.writeTwin(ctx, http.MethodPatch, "update the twin of device", deviceID, patch, opts)
}

// ReplaceTwin replaces a twin's tags and desired properties
// (PUT /twins/{id}) and returns the twin as the hub now holds it.
func (c *RegistryClient) ReplaceTwin(ctx context.Context, deviceID string, twin TwinPatch, opts *TwinWriteOptions) (Twin, error) {
	return c.writeTwin(ctx, http.MethodPut, "replace the twin of device", deviceID, twin, opts)
}

// writeTwin sends what Node's Registry.updateTwin sends: the JSON body with
// Content-Type application/json; charset=utf-8 and a quoted If-Match.
func (c *RegistryClient) writeTwin(ctx context.Context, method, what, deviceID string, body TwinPatch, opts *TwinWriteOptions) (Twin, error) {
	var tw Twin
	req, err := runtime.NewRequest(ctx, method, endpoint(c.host, "/twins/"+url.PathEscape(deviceID)))
	if err != nil {
		return tw, err
	}
	if err := runtime.MarshalAsJSON(req, body); err != nil {
		return tw, err
	}
	ifMatch := `"*"`
	if opts != nil && opts.IfMatch != nil {
		ifMatch = quote(string(*opts.IfMatch))
	}
	req.Raw().Header.Set("If-Match", ifMatch)
	req.Raw().Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := c.pl.Do(req)
	if err != nil {
		return tw, err
	}
	if resp.StatusCode != http.StatusOK {
		return tw, fmt.Errorf("%s %q in %s: %w", what, deviceID, c.host, c.newError(resp))
	}
	err = runtime.UnmarshalAsJSON(resp, &tw)
	return tw, err
}

// IsPreconditionFailed reports whether err is the hub's 412: the twin (or
// device) changed since the ETag given in IfMatch was read.
func IsPreconditionFailed(err error) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusPreconditionFailed
}
