package tui

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/cleanup"
	"github.com/dpsconsole/dpsconsole/dps/device"
	"github.com/dpsconsole/dpsconsole/dps/hub"
	"github.com/dpsconsole/dpsconsole/keys"
)

// Target is the live DPS the console works on, with what the device and hub
// clients need to reach it.
type Target struct {
	Name           string // "emulator", or the DPS host
	IDScope        string
	DeviceEndpoint string // host[:port] of the device API
	// MQTTEndpoint is host:port of DPS's MQTT listener; "" = the device
	// endpoint's name on 8883.
	MQTTEndpoint string
	// HubMQTTEndpoints maps a lower-case hub host name to its MQTT
	// host:port; a hub not in it is reached on its name on 8883.
	HubMQTTEndpoints     map[string]string
	Service              *dps.Client
	HubConnectionStrings []string
	// Journal records the groups the console sees and deletes, so the
	// clean-up can tell orphans later; nil = none.
	Journal *cleanup.Journal
	// StateDir holds the clean-up job logs.
	StateDir string
	// HTTPClient trusts the target's CA (the emulator's); nil = system roots.
	HTTPClient *http.Client

	// Auth is how the console signs its requests, for the header; "" is a
	// connection string's key, said nowhere.
	Auth AuthMode
	// Credential is the Microsoft Entra ID sign-in of a DPS found with ARM
	// (Auth AuthEntraID or AuthSASFromARM); nil otherwise.
	Credential azcore.TokenCredential
	// LinkedHubs are the host names of the DPS's linked hubs, reached with
	// Credential under AuthEntraID (no hub connection string is needed).
	LinkedHubs []string
	// Identity is who signed in (a user's sign-in name or an app ID, from
	// the token's claims, never the token); the console fills it in.
	Identity string
}

// AuthMode is how a target's requests are signed.
type AuthMode string

const (
	AuthEntraID    AuthMode = "Entra ID"           // bearer tokens of Credential
	AuthSASFromARM AuthMode = "SAS (ARM ListKeys)" // a shared access key read with ListKeys, signed in for it
)

// bearer reports whether the hubs are reached with Credential.
func (t *Target) bearer() bool { return t.Auth == AuthEntraID && t.Credential != nil }

func (t *Target) clientOptions() azcore.ClientOptions {
	var o azcore.ClientOptions
	if t.HTTPClient != nil {
		o.Transport = t.HTTPClient
	}
	return o
}

// Device returns a device-registration client for the target's ID scope
// over transport tr ("" is HTTPS). A local service target (an emulator) never gets the global endpoint: its
// simulated devices would register with Azure instead.
func (t *Target) Device(tr device.Transport) (*device.Client, error) {
	if t.IDScope == "" {
		return nil, fmt.Errorf("the ID scope of %s is unknown: set DPS_ID_SCOPE", t.Name)
	}
	if t.Service != nil && isLoopback(t.Service.Host()) && (t.DeviceEndpoint == "" || strings.EqualFold(t.DeviceEndpoint, device.DefaultProvisioningHost)) {
		endpoint := cmp.Or(t.DeviceEndpoint, "not set")
		return nil, fmt.Errorf("the DPS at %s is local (an emulator), but the device endpoint is %s: a simulated device would register with Azure, not with it. "+
			"Set DPS_DEVICE_ENDPOINT to the emulator's device endpoint (the DPS_DEVICE_ENDPOINT line of its emulator.env) and start the console again", t.Service.Host(), endpoint)
	}
	return device.NewClient(t.IDScope, &device.ClientOptions{ClientOptions: t.clientOptions(), ProvisioningHost: t.DeviceEndpoint,
		Transport: tr, MQTTHost: t.MQTTEndpoint})
}

// dialTimeout bounds connecting to a target, so that an unroutable one is
// reported within seconds.
const dialTimeout = 5 * time.Second

// FailFast makes the console's requests to a host it cannot connect to fail
// at once instead of after the client's retries (half a minute of an empty
// view), with what failed and what to check: the views show the error, and
// r tries again. A target that answers slowly is still retried.
func FailFast(c *http.Client) {
	if tr, ok := c.Transport.(*http.Transport); ok {
		tr.DialContext = (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext
	}
	c.Transport = unreachableIsFinal{c.Transport}
}

type unreachableIsFinal struct{ next http.RoundTripper }

func (u unreachableIsFinal) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := u.next.RoundTrip(req)
	var op *net.OpError
	if err != nil && errors.As(err, &op) && op.Op == "dial" {
		return nil, unreachableError{host: req.URL.Host, err: op}
	}
	return resp, err
}

// unreachableError is final: azcore does not retry a NonRetriable error.
type unreachableError struct {
	host string
	err  *net.OpError
}

func (e unreachableError) Error() string {
	return fmt.Sprintf("cannot reach %s (%v); check that it is running and reachable from here "+
		"(a standalone emulator: that `dpsconsole emulator` still runs; Azure: the network, the proxy and the connection string's HostName)",
		e.host, e.err.Err)
}
func (e unreachableError) Unwrap() error { return e.err }
func (unreachableError) NonRetriable()   {}

// isLoopback reports whether host[:port] names this machine.
func isLoopback(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return strings.EqualFold(host, "localhost") || (ip != nil && ip.IsLoopback())
}

// HubDevice returns a telemetry client for a device on an assigned hub,
// over transport tr; Close it after use.
func (t *Target) HubDevice(hubHost, deviceID string, key keys.Key, tr device.Transport) (*hub.DeviceClient, error) {
	return hub.NewDeviceClient(hubHost, deviceID, key, &hub.ClientOptions{ClientOptions: t.clientOptions(), Transport: tr, MQTTHost: t.HubMQTTEndpoints[strings.ToLower(hubHost)]})
}

// Registry returns the registry client of the hub named hubHost: signed in
// with Entra ID when the target is, else when the target has its service
// connection string.
func (t *Target) Registry(hubHost string) (*hub.RegistryClient, error) {
	if t.bearer() {
		return hub.NewRegistryClient(hubHost, t.Credential, &hub.RegistryOptions{ClientOptions: hub.ClientOptions{ClientOptions: t.clientOptions()}})
	}
	for _, cs := range t.HubConnectionStrings {
		parsed, err := keys.ParseServiceConnectionString(cs)
		if err != nil || !strings.EqualFold(parsed.HostName, hubHost) {
			continue
		}
		return hub.NewRegistryClientFromConnectionString(cs, &hub.ClientOptions{ClientOptions: t.clientOptions()})
	}
	return nil, fmt.Errorf("no IoT Hub connection string for %s: set IOTHUB_CONNECTION_STRING to reach its registry", hubHost)
}

// hubEnvName is the variable that holds hubHost's connection string, as
// the emulator's env file and the hub CLI name them: IOTHUB_CONNECTION_STRING
// for the first hub, IOTHUB_CONNECTION_STRING_N for hub N after it.
func (t *Target) hubEnvName(hubHost string) string {
	for i, cs := range t.HubConnectionStrings {
		parsed, err := keys.ParseServiceConnectionString(cs)
		if err == nil && strings.EqualFold(parsed.HostName, hubHost) && i > 0 {
			return "IOTHUB_CONNECTION_STRING_" + strconv.Itoa(i+1)
		}
	}
	return "IOTHUB_CONNECTION_STRING"
}

// Registries returns a registry client for every linked hub (signed in
// with Entra ID) or every hub connection string.
func (t *Target) Registries() ([]*hub.RegistryClient, error) {
	var out []*hub.RegistryClient
	if t.bearer() {
		for _, h := range t.LinkedHubs {
			r, err := t.Registry(h)
			if err != nil {
				return nil, fmt.Errorf("IoT hub %s: %w", h, err)
			}
			out = append(out, r)
		}
		return out, nil
	}
	for i, cs := range t.HubConnectionStrings {
		r, err := hub.NewRegistryClientFromConnectionString(cs, &hub.ClientOptions{ClientOptions: t.clientOptions()})
		if err != nil {
			return nil, fmt.Errorf("IoT Hub connection string %d: %w", i+1, err)
		}
		out = append(out, r)
	}
	return out, nil
}
