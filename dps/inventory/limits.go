// Package inventory measures and exports what a DPS holds: the counts behind
// `:quota` and `dpsconsole quota` against the documented limits, and the
// record export behind `:export` and `dpsconsole registrations export`. It
// reads through the dps client's raw pagers, so counting and JSON export
// never decode a record.
package inventory

// Limit is one documented limit of a DPS instance.
type Limit struct {
	Resource   string // as the limits page names it
	Max        int
	Adjustable bool // whether support can raise it
}

// The limits a quota report measures, quoted from the Azure docs page "Azure
// IoT Hub Device Provisioning Service quotas and limits" (the
// iot-dps-limits.md include of https://learn.microsoft.com/azure/azure-resource-manager/management/azure-subscription-service-limits,
// ms.date 10/10/2021), which reads:
//
//	Maximum number of registrations                          1,000,000  Yes
//	Maximum number of individual enrollments                 1,000,000  Yes
//	Maximum number of enrollment groups (X.509 certificate)  100        Yes
//	Maximum number of enrollment groups (symmetric key)      100        No
//	Maximum number of linked IoT hubs                        50         No
//
// and adds: "If the hard limit on symmetric key enrollment groups is a
// blocking issue, it is recommended to use individual enrollments as a
// workaround."
var Limits = [...]Limit{
	Registrations:      {"registrations", 1_000_000, true},
	Enrollments:        {"individual enrollments", 1_000_000, true},
	X509Groups:         {"enrollment groups (X.509 certificate)", 100, true},
	SymmetricKeyGroups: {"enrollment groups (symmetric key)", 100, false},
	LinkedHubs:         {"linked IoT hubs", 50, false},
}

// Kind names a row of Limits.
type Kind int

const (
	Registrations Kind = iota
	Enrollments
	X509Groups
	SymmetricKeyGroups
	LinkedHubs
)

// LimitsSource names where the limits come from, for reports.
const LimitsSource = `Azure docs, "Azure IoT Hub Device Provisioning Service quotas and limits" (iot-dps-limits.md, 10/10/2021)`
