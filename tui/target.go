package tui

import (
	"fmt"
	"net/http"
	"strings"

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
}

func (t *Target) clientOptions() azcore.ClientOptions {
	var o azcore.ClientOptions
	if t.HTTPClient != nil {
		o.Transport = t.HTTPClient
	}
	return o
}

// Device returns a device-registration client for the target's ID scope
// over transport tr ("" is HTTPS).
func (t *Target) Device(tr device.Transport) (*device.Client, error) {
	if t.IDScope == "" {
		return nil, fmt.Errorf("the ID scope of %s is unknown: set DPS_ID_SCOPE", t.Name)
	}
	return device.NewClient(t.IDScope, &device.ClientOptions{ClientOptions: t.clientOptions(), ProvisioningHost: t.DeviceEndpoint,
		Transport: tr, MQTTHost: t.MQTTEndpoint})
}

// HubDevice returns a telemetry client for a device on an assigned hub,
// over transport tr; Close it after use.
func (t *Target) HubDevice(hubHost, deviceID string, key keys.Key, tr device.Transport) (*hub.DeviceClient, error) {
	return hub.NewDeviceClient(hubHost, deviceID, key, &hub.ClientOptions{ClientOptions: t.clientOptions(), Transport: tr, MQTTHost: t.HubMQTTEndpoints[strings.ToLower(hubHost)]})
}

// Registry returns the registry client of the hub named hubHost, when the
// target has its service connection string.
func (t *Target) Registry(hubHost string) (*hub.RegistryClient, error) {
	for _, cs := range t.HubConnectionStrings {
		parsed, err := keys.ParseServiceConnectionString(cs)
		if err != nil || !strings.EqualFold(parsed.HostName, hubHost) {
			continue
		}
		return hub.NewRegistryClientFromConnectionString(cs, &hub.ClientOptions{ClientOptions: t.clientOptions()})
	}
	return nil, fmt.Errorf("no IoT Hub connection string for %s: set IOTHUB_CONNECTION_STRING to reach its registry", hubHost)
}

// Registries returns a registry client for every hub connection string.
func (t *Target) Registries() ([]*hub.RegistryClient, error) {
	var out []*hub.RegistryClient
	for i, cs := range t.HubConnectionStrings {
		r, err := hub.NewRegistryClientFromConnectionString(cs, &hub.ClientOptions{ClientOptions: t.clientOptions()})
		if err != nil {
			return nil, fmt.Errorf("IoT Hub connection string %d: %w", i+1, err)
		}
		out = append(out, r)
	}
	return out, nil
}
