package hub

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/internal/mqttconn"
	"github.com/dpsconsole/dpsconsole/keys"
)

// ClientOptions configures the hub clients.
type ClientOptions struct {
	azcore.ClientOptions
	// Transport is how a DeviceClient sends telemetry: HTTPS (""), MQTT
	// or MQTT over WebSockets. The registry is HTTPS only.
	Transport mqttconn.Transport
	// MQTTHost is host:port where a DeviceClient's MQTT/TLS connection
	// goes; "" is the hub's host name on port 8883, as on a real hub.
	// WebSockets always go to the hub host (port 443 unless it names one).
	MQTTHost string
	// TLSConfig is the TLS of MQTT connections; nil takes the one of
	// ClientOptions.Transport when it is an *http.Client, else system roots.
	TLSConfig *tls.Config
}

// tokenLifetime is how long each signed token is valid; every request gets
// one valid for that long from now, as the Node SDKs do (azure-iothub's
// RestApiClient extends its token to an hour from now on each request).
const tokenLifetime = time.Hour

// sasPolicy signs every request (and every retry) with a token expiring
// tokenLifetime from now; within one second the requests share a token.
type sasPolicy struct{ signer *keys.SASSigner }

func newSASPolicy(resource string, key keys.Key, keyName string) *sasPolicy {
	return &sasPolicy{keys.NewSASSigner(resource, key, keyName)}
}

func (p *sasPolicy) Do(req *policy.Request) (*http.Response, error) {
	req.Raw().Header.Set("Authorization", p.signer.Sign(time.Now().Add(tokenLifetime)))
	return req.Next()
}

func newPipeline(auth *sasPolicy, opts *ClientOptions) runtime.Pipeline {
	if opts == nil {
		opts = &ClientOptions{}
	}
	return runtime.NewPipeline("dpsconsole/hub", "v1", runtime.PipelineOptions{PerRetry: []policy.Policy{auth}}, &opts.ClientOptions)
}

// checkHost accepts a hub host name, optionally with a port.
func checkHost(host string) error {
	u, err := url.Parse("https://" + host)
	if err != nil || u.Host != host || u.Hostname() == "" {
		return fmt.Errorf("hub host %q must be a host name or host:port (e.g. myhub.azure-devices.net), without https:// or a path", host)
	}
	return nil
}

func endpoint(host, path string, query ...string) string {
	q := "?api-version=" + APIVersion
	for _, kv := range query {
		q += "&" + kv
	}
	return "https://" + host + path + q
}

// DeviceClient sends device-to-cloud messages as one device, over HTTPS or
// over one MQTT connection it opens on the first message (mqtt.go).
type DeviceClient struct {
	host, deviceID string
	pl             runtime.Pipeline
	mqtt           *mqttSender // nil over HTTPS
	link           *deviceLink // twin and methods (devicetwin.go); nil over HTTPS
}

// NewDeviceClient returns a client that acts as deviceID on hubHost, signing
// with the device's key (the key it registered with DPS).
func NewDeviceClient(hubHost, deviceID string, key keys.Key, opts *ClientOptions) (*DeviceClient, error) {
	if err := checkHost(hubHost); err != nil {
		return nil, err
	}
	if deviceID == "" {
		return nil, errors.New("a device ID is required")
	}
	if key.IsZero() {
		return nil, errors.New("a device key is required")
	}
	if opts == nil {
		opts = &ClientOptions{}
	}
	tr, err := mqttconn.ParseTransport(string(opts.Transport))
	if err != nil {
		return nil, err
	}
	auth := newSASPolicy(hubHost+"/devices/"+deviceID, key, "")
	c := &DeviceClient{host: hubHost, deviceID: deviceID, pl: newPipeline(auth, opts)}
	if tr.IsMQTT() {
		if c.mqtt, err = newMQTTSender(hubHost, deviceID, key, tr, opts); err != nil {
			return nil, err
		}
		c.link = newDeviceLink(c.mqtt)
	}
	return c, nil
}

// NewDeviceClientFromConnectionString takes HostName=...;DeviceId=...;SharedAccessKey=....
func NewDeviceClientFromConnectionString(cs string, opts *ClientOptions) (*DeviceClient, error) {
	c, err := keys.ParseDeviceConnectionString(cs)
	if err != nil {
		return nil, err
	}
	return NewDeviceClient(c.HostName, c.DeviceID, c.SharedAccessKey, opts)
}

// SendEventOptions are the optional message properties.
type SendEventOptions struct {
	Properties      map[string]string // custom properties, sent as iothub-app-<name>
	MessageID       string
	CorrelationID   string
	ContentType     string
	ContentEncoding string
}

// SendEvent sends one device-to-cloud message: over HTTPS the hub answers
// 204, over MQTT it acknowledges the QoS 1 publish.
func (c *DeviceClient) SendEvent(ctx context.Context, body []byte, opts *SendEventOptions) error {
	if opts == nil {
		opts = &SendEventOptions{}
	}
	if c.mqtt != nil {
		return c.mqtt.send(ctx, body, opts)
	}
	path := "/devices/" + url.PathEscape(c.deviceID) + "/messages/events"
	req, err := runtime.NewRequest(ctx, http.MethodPost, endpoint(c.host, path))
	if err != nil {
		return err
	}
	h := req.Raw().Header
	h.Set("iothub-to", "/devices/"+c.deviceID+"/messages/events")
	for k, v := range map[string]string{"iothub-messageid": opts.MessageID, "iothub-correlationid": opts.CorrelationID, "iothub-contenttype": opts.ContentType, "iothub-contentencoding": opts.ContentEncoding} {
		if v != "" {
			h.Set(k, v)
		}
	}
	if err := checkProperties(opts.Properties); err != nil {
		return err
	}
	for k, v := range opts.Properties {
		h.Set("iothub-app-"+k, v)
	}
	if err := req.SetBody(streaming.NopCloser(bytes.NewReader(body)), "application/octet-stream"); err != nil {
		return err
	}
	resp, err := c.pl.Do(req)
	if err != nil {
		return fmt.Errorf("send telemetry as %s to %s: %w", c.deviceID, c.host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("send telemetry as %s to %s: %w", c.deviceID, c.host, newError(resp))
	}
	return nil
}

// Close ends the client's MQTT connection, if it has one.
func (c *DeviceClient) Close() {
	if c.mqtt != nil {
		c.link.close()
		c.mqtt.close()
	}
}

// RegistryClient reads and deletes device identities and reads and writes
// twins, with a service policy or signed in with Microsoft Entra ID.
type RegistryClient struct {
	host       string
	pl         runtime.Pipeline
	signedIn   bool   // bearer tokens (NewRegistryClient), not SAS
	resourceID string // the hub's Azure resource ID, for refusals; "" = unknown
}

// Scope is the OAuth 2.0 scope of the IoT Hub service API.
const Scope = "https://iothubs.azure.net/.default"

// The built-in Azure roles of the IoT Hub data plane.
const (
	RoleDataReader          = "IoT Hub Data Reader"
	RoleRegistryContributor = "IoT Hub Registry Contributor"
	RoleTwinContributor     = "IoT Hub Twin Contributor"
	RoleDataContributor     = "IoT Hub Data Contributor"
)

// RegistryOptions are the options of NewRegistryClient.
type RegistryOptions struct {
	ClientOptions
	// ResourceID is the hub's Azure resource ID, named in refusals as the
	// scope where the missing role must be assigned; "" = "the IoT hub resource".
	ResourceID string
}

// NewRegistryClient makes a registry client of the hub at host that signs
// every request with a Microsoft Entra ID bearer token for Scope from cred.
// Refusals come back as *dps.AccessError naming the missing role.
func NewRegistryClient(host string, cred azcore.TokenCredential, opts *RegistryOptions) (*RegistryClient, error) {
	if err := checkHost(host); err != nil {
		return nil, err
	}
	if cred == nil {
		return nil, errors.New("hub: NewRegistryClient needs a credential")
	}
	if opts == nil {
		opts = &RegistryOptions{}
	}
	auth := runtime.NewBearerTokenPolicy(cred, []string{Scope}, nil)
	pl := runtime.NewPipeline("dpsconsole/hub", "v1", runtime.PipelineOptions{PerRetry: []policy.Policy{auth}}, &opts.ClientOptions.ClientOptions)
	return &RegistryClient{host: host, pl: pl, signedIn: true, resourceID: opts.ResourceID}, nil
}

// newError is the hub's error of a failed answer; signed in, a 401 or 403
// becomes a *dps.AccessError naming the role.
func (c *RegistryClient) newError(resp *http.Response) error {
	err := newError(resp)
	if c.signedIn {
		err = dps.NewAccessError(err, "IoT hub", c.resourceID, resp.Request, hubDataAction)
	}
	return err
}

// hubDataAction maps a service API request to its data action and the least
// role that grants it.
func hubDataAction(method, path string) (action, role string) {
	const prefix = "Microsoft.Devices/IotHubs/"
	switch {
	case strings.HasSuffix(path, "/methods"):
		return prefix + "directMethods/invoke/action", RoleDataContributor
	case strings.HasPrefix(path, "/twins/") && method != http.MethodGet:
		return prefix + "twins/write", RoleTwinContributor
	case strings.HasPrefix(path, "/twins/"):
		return prefix + "twins/read", RoleDataReader
	case method == http.MethodDelete:
		return prefix + "devices/delete", RoleRegistryContributor
	case method == http.MethodPut:
		return prefix + "devices/write", RoleRegistryContributor
	}
	return prefix + "devices/read", RoleDataReader // GET and the query POST
}

// NewRegistryClientFromConnectionString takes a hub service connection string:
// HostName=...;SharedAccessKeyName=...;SharedAccessKey=....
func NewRegistryClientFromConnectionString(cs string, opts *ClientOptions) (*RegistryClient, error) {
	c, err := keys.ParseServiceConnectionString(cs)
	if err != nil {
		return nil, err
	}
	if err := checkHost(c.HostName); err != nil {
		return nil, err
	}
	auth := newSASPolicy(c.HostName, c.SharedAccessKey, c.SharedAccessKeyName)
	return &RegistryClient{host: c.HostName, pl: newPipeline(auth, opts)}, nil
}

// Host is the hub's host name.
func (c *RegistryClient) Host() string { return c.host }

// GetDevice reads one device identity.
func (c *RegistryClient) GetDevice(ctx context.Context, deviceID string) (Device, error) {
	return get[Device](ctx, c, "/devices/", "get device", deviceID)
}

// GetTwin reads a device twin: its tags and desired and reported
// properties (GET /twins/{id}).
func (c *RegistryClient) GetTwin(ctx context.Context, deviceID string) (Twin, error) {
	return get[Twin](ctx, c, "/twins/", "get the twin of device", deviceID)
}

// GetDeviceJSON and GetTwinJSON read the identity and the twin as the hub
// sent them, undecoded: the console's describe pane shows the hub's own JSON.
func (c *RegistryClient) GetDeviceJSON(ctx context.Context, deviceID string) (json.RawMessage, error) {
	return get[json.RawMessage](ctx, c, "/devices/", "get device", deviceID)
}

func (c *RegistryClient) GetTwinJSON(ctx context.Context, deviceID string) (json.RawMessage, error) {
	return get[json.RawMessage](ctx, c, "/twins/", "get the twin of device", deviceID)
}

func get[T any](ctx context.Context, c *RegistryClient, prefix, what, deviceID string) (T, error) {
	var v T
	req, err := runtime.NewRequest(ctx, http.MethodGet, endpoint(c.host, prefix+url.PathEscape(deviceID)))
	if err != nil {
		return v, err
	}
	resp, err := c.pl.Do(req)
	if err != nil {
		return v, err
	}
	if resp.StatusCode != http.StatusOK {
		return v, fmt.Errorf("%s %q from %s: %w", what, deviceID, c.host, c.newError(resp))
	}
	err = runtime.UnmarshalAsJSON(resp, &v)
	return v, err
}

// DeleteOptions are the optional parts of DeleteDevice.
type DeleteOptions struct {
	// IfMatch deletes only this version of the device; nil deletes any ("*").
	IfMatch *azcore.ETag
}

// DeleteDevice removes a device identity.
func (c *RegistryClient) DeleteDevice(ctx context.Context, deviceID string, opts *DeleteOptions) error {
	req, err := runtime.NewRequest(ctx, http.MethodDelete, endpoint(c.host, "/devices/"+url.PathEscape(deviceID)))
	if err != nil {
		return err
	}
	ifMatch := `"*"`
	if opts != nil && opts.IfMatch != nil {
		ifMatch = quote(string(*opts.IfMatch))
	}
	req.Raw().Header.Set("If-Match", ifMatch)
	resp, err := c.pl.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("delete device %q from %s: %w", deviceID, c.host, c.newError(resp))
	}
	return nil
}

func quote(s string) string {
	if strings.HasPrefix(s, `"`) {
		return s
	}
	return `"` + s + `"`
}

// PagerOptions are the optional parts of NewDevicePager.
type PagerOptions struct {
	PageSize          int32  // x-ms-max-item-count; 0 leaves it to the hub
	ContinuationToken string // start after this page
}

// DevicePage is one page of a registry query.
type DevicePage struct {
	Items             []Twin
	ContinuationToken string // "" on the last page
}

// NewDevicePager lists every device of the hub, a page at a time, with
// POST /devices/query (the registry list the hub recommends).
func (c *RegistryClient) NewDevicePager(opts *PagerOptions) *runtime.Pager[DevicePage] {
	var o PagerOptions
	if opts != nil {
		o = *opts
	}
	return runtime.NewPager(runtime.PagingHandler[DevicePage]{
		More: func(p DevicePage) bool { return p.ContinuationToken != "" },
		Fetcher: func(ctx context.Context, prev *DevicePage) (DevicePage, error) {
			token := o.ContinuationToken
			if prev != nil {
				token = prev.ContinuationToken
			}
			return c.queryPage(ctx, o.PageSize, token)
		},
	})
}

func (c *RegistryClient) queryPage(ctx context.Context, size int32, token string) (DevicePage, error) {
	req, err := runtime.NewRequest(ctx, http.MethodPost, endpoint(c.host, "/devices/query"))
	if err != nil {
		return DevicePage{}, err
	}
	if size > 0 {
		req.Raw().Header.Set("x-ms-max-item-count", strconv.Itoa(int(size)))
	}
	if token != "" {
		req.Raw().Header.Set("x-ms-continuation", token)
	}
	if err := runtime.MarshalAsJSON(req, map[string]string{"query": "SELECT * FROM devices"}); err != nil {
		return DevicePage{}, err
	}
	resp, err := c.pl.Do(req)
	if err != nil {
		return DevicePage{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return DevicePage{}, fmt.Errorf("query devices of %s: %w", c.host, c.newError(resp))
	}
	var items []Twin
	if err := runtime.UnmarshalAsJSON(resp, &items); err != nil {
		return DevicePage{}, err
	}
	return DevicePage{Items: items, ContinuationToken: resp.Header.Get("x-ms-continuation")}, nil
}

var errorCodeInMessage = regexp.MustCompile(`ErrorCode:(\w+)`)

// newError makes an *azcore.ResponseError whose ErrorCode is the hub's
// (iothub-errorcode header, or "ErrorCode:X" in the body's Message).
func newError(resp *http.Response) error {
	code := resp.Header.Get("iothub-errorcode")
	if code == "" {
		var b ErrorBody
		if p, err := runtime.Payload(resp); err == nil && json.Unmarshal(p, &b) == nil {
			if m := errorCodeInMessage.FindStringSubmatch(b.Message); m != nil {
				code = m[1]
			}
		}
	}
	return runtime.NewResponseErrorWithErrorCode(resp, code)
}

// IsNotFound reports whether err is the hub's 404 (no such device).
func IsNotFound(err error) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusNotFound
}
