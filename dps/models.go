// Package dps is a client for the Azure IoT Hub Device Provisioning Service
// data-plane (service) API, built on the azcore pipeline. This file holds the
// wire models, with field names exactly as DPS sends them (api-version
// 2021-10-01); the emulator serves the same types.
package dps

import (
	"encoding/json"
	"time"
)

// APIVersion is the service API version this client speaks.
const APIVersion = "2021-10-01"

// Secret is a key as it travels on the wire. It marshals to JSON as itself but
// prints masked, so a model that holds keys can be logged or wrapped in an
// error without leaking them.
type Secret string

// Reveal returns the key text.
func (s Secret) Reveal() string { return string(s) }

// String masks the key.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "••••••••"
}

// GoString masks the key for %#v.
func (s Secret) GoString() string { return `dps.Secret("` + s.String() + `")` }

// AttestationType is how devices of an enrollment prove their identity.
type AttestationType string

const (
	AttestationNone         AttestationType = "none"
	AttestationTPM          AttestationType = "tpm"
	AttestationX509         AttestationType = "x509"
	AttestationSymmetricKey AttestationType = "symmetricKey"
)

// AttestationMechanism is the attestation of an enrollment or group. Only
// symmetric keys are modelled; TPM and X.509 blocks pass through untouched.
type AttestationMechanism struct {
	Type         AttestationType          `json:"type"`
	SymmetricKey *SymmetricKeyAttestation `json:"symmetricKey,omitempty"`
	TPM          json.RawMessage          `json:"tpm,omitempty"`
	X509         json.RawMessage          `json:"x509,omitempty"`
}

// SymmetricKeyAttestation holds the keys. GET leaves them out; PUT and
// attestationmechanism return them.
type SymmetricKeyAttestation struct {
	PrimaryKey   Secret `json:"primaryKey,omitempty"`
	SecondaryKey Secret `json:"secondaryKey,omitempty"`
}

// DeviceCapabilities of an enrollment.
type DeviceCapabilities struct {
	IoTEdge bool `json:"iotEdge"`
}

// ProvisioningStatus enables or disables an enrollment.
type ProvisioningStatus string

const (
	ProvisioningEnabled  ProvisioningStatus = "enabled"
	ProvisioningDisabled ProvisioningStatus = "disabled"
)

// AllocationPolicy chooses the hub a device is assigned to.
type AllocationPolicy string

const (
	AllocationHashed     AllocationPolicy = "hashed"
	AllocationGeoLatency AllocationPolicy = "geoLatency"
	AllocationStatic     AllocationPolicy = "static"
	AllocationCustom     AllocationPolicy = "custom"
)

// ReprovisionPolicy says what happens when a registered device registers again.
type ReprovisionPolicy struct {
	UpdateHubAssignment bool `json:"updateHubAssignment"`
	MigrateDeviceData   bool `json:"migrateDeviceData"`
}

// CustomAllocationDefinition names the webhook of a custom allocation.
type CustomAllocationDefinition struct {
	WebhookURL string `json:"webhookUrl"`
	APIVersion string `json:"apiVersion"`
}

// TwinCollection is a free-form JSON object of twin tags or properties.
type TwinCollection map[string]any

// InitialTwin is the twin a newly assigned device starts with.
type InitialTwin struct {
	Tags       TwinCollection         `json:"tags,omitempty"`
	Properties *InitialTwinProperties `json:"properties,omitempty"`
}

// InitialTwinProperties holds the desired properties of an initial twin.
type InitialTwinProperties struct {
	Desired TwinCollection `json:"desired,omitempty"`
}

// EnrollmentGroup admits every device whose key derives from the group key.
type EnrollmentGroup struct {
	EnrollmentGroupID          string                      `json:"enrollmentGroupId"`
	Attestation                AttestationMechanism        `json:"attestation"`
	Capabilities               *DeviceCapabilities         `json:"capabilities,omitempty"`
	IoTHubHostName             string                      `json:"iotHubHostName,omitempty"`
	InitialTwin                *InitialTwin                `json:"initialTwin,omitempty"`
	ETag                       string                      `json:"etag,omitempty"`
	ProvisioningStatus         ProvisioningStatus          `json:"provisioningStatus,omitempty"`
	ReprovisionPolicy          *ReprovisionPolicy          `json:"reprovisionPolicy,omitempty"`
	CreatedDateTimeUTC         time.Time                   `json:"createdDateTimeUtc,omitzero"`
	LastUpdatedDateTimeUTC     time.Time                   `json:"lastUpdatedDateTimeUtc,omitzero"`
	AllocationPolicy           AllocationPolicy            `json:"allocationPolicy,omitempty"`
	IoTHubs                    []string                    `json:"iotHubs,omitempty"`
	CustomAllocationDefinition *CustomAllocationDefinition `json:"customAllocationDefinition,omitempty"`
}

// IndividualEnrollment admits one device by its registration ID.
type IndividualEnrollment struct {
	RegistrationID             string                      `json:"registrationId"`
	DeviceID                   string                      `json:"deviceId,omitempty"`
	RegistrationState          *DeviceRegistrationState    `json:"registrationState,omitempty"`
	Attestation                AttestationMechanism        `json:"attestation"`
	Capabilities               *DeviceCapabilities         `json:"capabilities,omitempty"`
	IoTHubHostName             string                      `json:"iotHubHostName,omitempty"`
	InitialTwin                *InitialTwin                `json:"initialTwin,omitempty"`
	ETag                       string                      `json:"etag,omitempty"`
	ProvisioningStatus         ProvisioningStatus          `json:"provisioningStatus,omitempty"`
	ReprovisionPolicy          *ReprovisionPolicy          `json:"reprovisionPolicy,omitempty"`
	CreatedDateTimeUTC         time.Time                   `json:"createdDateTimeUtc,omitzero"`
	LastUpdatedDateTimeUTC     time.Time                   `json:"lastUpdatedDateTimeUtc,omitzero"`
	AllocationPolicy           AllocationPolicy            `json:"allocationPolicy,omitempty"`
	IoTHubs                    []string                    `json:"iotHubs,omitempty"`
	CustomAllocationDefinition *CustomAllocationDefinition `json:"customAllocationDefinition,omitempty"`
	OptionalDeviceInformation  TwinCollection              `json:"optionalDeviceInformation,omitempty"`
}

// RegistrationStatus is the state of a device registration.
type RegistrationStatus string

const (
	StatusUnassigned RegistrationStatus = "unassigned"
	StatusAssigning  RegistrationStatus = "assigning"
	StatusAssigned   RegistrationStatus = "assigned"
	StatusFailed     RegistrationStatus = "failed"
	StatusDisabled   RegistrationStatus = "disabled"
)

// Substatus says how an assigned device got its hub.
type Substatus string

const (
	SubstatusInitialAssignment                Substatus = "initialAssignment"
	SubstatusDeviceDataMigrated               Substatus = "deviceDataMigrated"
	SubstatusDeviceDataReset                  Substatus = "deviceDataReset"
	SubstatusReprovisionedToInitialAssignment Substatus = "reprovisionedToInitialAssignment"
)

// DeviceRegistrationState is a registration record: the result of a device's
// last registration. The device API returns the same object as
// registrationState, with SymmetricKey naming the group that admitted it.
type DeviceRegistrationState struct {
	RegistrationID         string                          `json:"registrationId"`
	CreatedDateTimeUTC     time.Time                       `json:"createdDateTimeUtc,omitzero"`
	AssignedHub            string                          `json:"assignedHub,omitempty"`
	DeviceID               string                          `json:"deviceId,omitempty"`
	Status                 RegistrationStatus              `json:"status,omitempty"`
	Substatus              Substatus                       `json:"substatus,omitempty"`
	ErrorCode              int32                           `json:"errorCode,omitempty"`
	ErrorMessage           string                          `json:"errorMessage,omitempty"`
	LastUpdatedDateTimeUTC time.Time                       `json:"lastUpdatedDateTimeUtc,omitzero"`
	ETag                   string                          `json:"etag,omitempty"`
	Payload                json.RawMessage                 `json:"payload,omitempty"`
	SymmetricKey           *SymmetricKeyRegistrationResult `json:"symmetricKey,omitempty"`
}

// SymmetricKeyRegistrationResult is the device API's note of which group
// admitted a symmetric-key device.
type SymmetricKeyRegistrationResult struct {
	EnrollmentGroupID string `json:"enrollmentGroupId,omitempty"`
}

// QuerySpecification is the body of the query operations. DPS treats every
// query string as "all".
type QuerySpecification struct {
	Query string `json:"query"`
}

// BulkOperationMode is the action of a bulk enrollment operation. DPS compares
// it case-insensitively (the Node SDK spells updateIfMatchEtag).
type BulkOperationMode string

const (
	BulkCreate            BulkOperationMode = "create"
	BulkUpdate            BulkOperationMode = "update"
	BulkUpdateIfMatchETag BulkOperationMode = "updateIfMatchETag"
	BulkDelete            BulkOperationMode = "delete"
)

// MaxBulkItems is the most enrollments or groups DPS takes in one bulk call.
const MaxBulkItems = 10

// BulkEnrollmentOperation is the body of POST /enrollments.
type BulkEnrollmentOperation struct {
	Mode        BulkOperationMode      `json:"mode"`
	Enrollments []IndividualEnrollment `json:"enrollments"`
}

// BulkEnrollmentOperationResult says which enrollments of a bulk call failed.
type BulkEnrollmentOperationResult struct {
	IsSuccessful bool                           `json:"isSuccessful"`
	Errors       []BulkEnrollmentOperationError `json:"errors,omitempty"`
}

// BulkEnrollmentOperationError is one failed enrollment of a bulk call.
type BulkEnrollmentOperationError struct {
	RegistrationID string `json:"registrationId"`
	ErrorCode      int32  `json:"errorCode"`
	ErrorStatus    string `json:"errorStatus"`
}

// BulkEnrollmentGroupOperation is the body of POST /enrollmentGroups.
type BulkEnrollmentGroupOperation struct {
	Mode             BulkOperationMode `json:"mode"`
	EnrollmentGroups []EnrollmentGroup `json:"enrollmentGroups"`
}

// BulkEnrollmentGroupOperationResult says which groups of a bulk call failed.
type BulkEnrollmentGroupOperationResult struct {
	IsSuccessful bool                                `json:"isSuccessful"`
	Errors       []BulkEnrollmentGroupOperationError `json:"errors,omitempty"`
}

// BulkEnrollmentGroupOperationError is one failed group of a bulk call.
type BulkEnrollmentGroupOperationError struct {
	EnrollmentGroupID string `json:"enrollmentGroupId"`
	ErrorCode         int32  `json:"errorCode"`
	ErrorStatus       string `json:"errorStatus"`
}

// ErrorDetails is the body DPS sends with every error
// (ProvisioningServiceErrorDetails).
type ErrorDetails struct {
	ErrorCode    int32             `json:"errorCode"`
	TrackingID   string            `json:"trackingId,omitempty"`
	Message      string            `json:"message,omitempty"`
	Info         map[string]string `json:"info,omitempty"`
	TimestampUTC time.Time         `json:"timestampUtc,omitzero"`
}

// Device API models (dps-protocol.md §3).

// DeviceRegistration is the body a device sends to register.
type DeviceRegistration struct {
	RegistrationID string          `json:"registrationId"`
	Payload        json.RawMessage `json:"payload,omitempty"`
}

// RegistrationOperationStatus is the device API's answer to a register or a
// poll.
type RegistrationOperationStatus struct {
	OperationID       string                   `json:"operationId"`
	Status            RegistrationStatus       `json:"status"`
	RegistrationState *DeviceRegistrationState `json:"registrationState,omitempty"`
}

// Custom allocation webhook models (dps-protocol.md §6.3).

// AllocationRequest is what DPS posts to a custom allocation webhook. Exactly
// one of IndividualEnrollment and EnrollmentGroup is set.
type AllocationRequest struct {
	IndividualEnrollment *IndividualEnrollment `json:"individualEnrollment,omitempty"`
	EnrollmentGroup      *EnrollmentGroup      `json:"enrollmentGroup,omitempty"`
	DeviceRuntimeContext DeviceRuntimeContext  `json:"deviceRuntimeContext"`
	LinkedHubs           []string              `json:"linkedHubs"`
}

// DeviceRuntimeContext describes the registering device to the webhook.
type DeviceRuntimeContext struct {
	RegistrationID        string          `json:"registrationId"`
	CurrentIoTHubHostName string          `json:"currentIotHubHostName,omitempty"`
	CurrentDeviceID       string          `json:"currentDeviceId,omitempty"`
	SymmetricKey          *struct{}       `json:"symmetricKey,omitempty"`
	Payload               json.RawMessage `json:"payload,omitempty"`
}

// AllocationResponse is the webhook's answer: the hub (one of LinkedHubs), and
// optionally an initial twin and a payload for the device.
type AllocationResponse struct {
	IoTHubHostName string          `json:"iotHubHostName"`
	InitialTwin    *InitialTwin    `json:"initialTwin,omitempty"`
	Payload        json.RawMessage `json:"payload,omitempty"`
}
