// Package hub is the part of an IoT hub the console needs: device-to-cloud
// telemetry over HTTPS with a device SAS, and with a service SAS the device
// registry (get, query, delete), device twins (get, update, replace) and
// direct methods. All run on the azcore pipeline. This file holds the wire
// models, with field names as IoT Hub sends them.
package hub

import (
	"encoding/json"
	"time"

	"github.com/dpsconsole/dpsconsole/dps"
)

// APIVersion is the IoT Hub api-version sent, as the Node SDKs do.
const APIVersion = "2021-04-12"

// Device is a device identity in the hub registry.
type Device struct {
	DeviceID                   string                   `json:"deviceId"`
	GenerationID               string                   `json:"generationId,omitempty"`
	ETag                       string                   `json:"etag,omitempty"`
	ConnectionState            string                   `json:"connectionState,omitempty"` // Connected | Disconnected
	Status                     string                   `json:"status,omitempty"`          // enabled | disabled
	StatusReason               string                   `json:"statusReason,omitempty"`
	ConnectionStateUpdatedTime time.Time                `json:"connectionStateUpdatedTime,omitzero"`
	StatusUpdatedTime          time.Time                `json:"statusUpdatedTime,omitzero"`
	LastActivityTime           time.Time                `json:"lastActivityTime,omitzero"`
	CloudToDeviceMessageCount  int                      `json:"cloudToDeviceMessageCount"`
	Authentication             *AuthenticationMechanism `json:"authentication,omitempty"`
	Capabilities               *dps.DeviceCapabilities  `json:"capabilities,omitempty"`
	DeviceScope                string                   `json:"deviceScope,omitempty"`
	ParentScopes               []string                 `json:"parentScopes,omitempty"`
}

// Authentication types of a device identity.
const (
	AuthSAS                  = "sas"
	AuthSelfSigned           = "selfSigned"
	AuthCertificateAuthority = "certificateAuthority"
	AuthNone                 = "none"
)

// AuthenticationMechanism is how a device proves itself to the hub.
type AuthenticationMechanism struct {
	Type           string          `json:"type"`
	SymmetricKey   *SymmetricKey   `json:"symmetricKey,omitempty"`
	X509Thumbprint json.RawMessage `json:"x509Thumbprint,omitempty"`
}

// SymmetricKey holds a device's keys; they print masked.
type SymmetricKey struct {
	PrimaryKey   dps.Secret `json:"primaryKey,omitempty"`
	SecondaryKey dps.Secret `json:"secondaryKey,omitempty"`
}

// Twin is what a registry query returns for each device.
type Twin struct {
	DeviceID                  string                  `json:"deviceId"`
	ETag                      string                  `json:"etag,omitempty"`
	DeviceETag                string                  `json:"deviceEtag,omitempty"`
	Status                    string                  `json:"status,omitempty"`
	StatusReason              string                  `json:"statusReason,omitempty"`
	StatusUpdateTime          time.Time               `json:"statusUpdateTime,omitzero"`
	ConnectionState           string                  `json:"connectionState,omitempty"`
	LastActivityTime          time.Time               `json:"lastActivityTime,omitzero"`
	CloudToDeviceMessageCount int                     `json:"cloudToDeviceMessageCount"`
	AuthenticationType        string                  `json:"authenticationType,omitempty"`
	Version                   int64                   `json:"version,omitempty"`
	Tags                      dps.TwinCollection      `json:"tags,omitempty"`
	Properties                *TwinProperties         `json:"properties,omitempty"`
	Capabilities              *dps.DeviceCapabilities `json:"capabilities,omitempty"`
	DeviceScope               string                  `json:"deviceScope,omitempty"`
	ModelID                   string                  `json:"modelId,omitempty"`
}

// TwinProperties are a twin's desired and reported properties (IoT Hub
// always sends both).
type TwinProperties struct {
	Desired  dps.TwinCollection `json:"desired"`
	Reported dps.TwinCollection `json:"reported"`
}

// ErrorBody is the body IoT Hub sends with an error:
// {"Message":"ErrorCode:DeviceNotFound;...","ExceptionMessage":"..."}.
type ErrorBody struct {
	Message          string `json:"Message"`
	ExceptionMessage string `json:"ExceptionMessage,omitempty"`
}
