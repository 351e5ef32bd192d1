package tui

import (
	"fmt"

	"github.com/dpsconsole/dpsconsole/dps"
)

// What a registration record's status, substatus and error code mean, as
// documented; nothing here is guessed. Sources:
//   - statuses: azure-iot-sdk-csharp, ProvisioningRegistrationStatusType
//     (its DRS is DPS);
//   - substatuses: the DPS service API 2021-10-01 swagger,
//     DeviceRegistrationState.substatus;
//   - the 6-digit error codes of a failed registration: azure-iot-sdk-c
//     prov_device_ll_client.c (DPS_HUB_ERROR_NO_HUB, DPS_HUB_ERROR_UNAUTH)
//     and common_prov_e2e.c (409203); dps-protocol.md §1.6;
//   - otherwise the code's HTTP status (code / 1000): "Common error codes"
//     in learn.microsoft.com/azure/iot-dps/how-to-troubleshoot-dps.
var (
	statusMeaning = map[dps.RegistrationStatus]string{
		dps.StatusUnassigned: "the device has not yet come online",
		dps.StatusAssigning:  "the device has connected to DPS, but no IoT hub has been returned to it yet",
		dps.StatusAssigned:   "DPS returned a device ID and an IoT hub to the device",
		dps.StatusFailed:     "the device's registration failed",
		dps.StatusDisabled:   "the device is disabled (its enrollment is disabled)",
	}
	substatusMeaning = map[dps.Substatus]string{
		dps.SubstatusInitialAssignment: "the device has been assigned to an IoT hub for the first time",
		dps.SubstatusDeviceDataMigrated: "the device has been assigned to a different IoT hub and its device data was migrated " +
			"from the previously assigned hub, which no longer has it",
		dps.SubstatusDeviceDataReset: "the device has been assigned to a different IoT hub and its device data was populated " +
			"from the initial state stored in the enrollment; the previously assigned hub no longer has it",
		dps.SubstatusReprovisionedToInitialAssignment: "the device has been re-provisioned to a previously assigned IoT hub",
	}
	errorCodeMeaning = map[int32]string{
		400208: "no IoT hub could be selected for the device (hub not specified): the enrollment links no hub DPS can use",
		400209: "DPS is not authorized on the IoT hub it picked: check the hub's link (its shared access policy) in DPS",
		409203: "precondition failed: the same device registered again while its earlier registration was running",
	}
	httpStatusMeaning = map[int32]string{
		400: "the request was not valid: it could not be parsed or validated",
		401: "the authorization could not be validated: a token expired or not for this URI, or a wrong key or certificate",
		404: "the DPS instance or a resource (an enrollment) does not exist",
		405: "the service does not accept this method here",
		409: "the request conflicts with the current state of the DPS instance",
		412: "the ETag in the request does not match the resource's current one",
		415: "the content type of the request is not supported",
		429: "the operation was throttled: DPS's limits were exceeded; retry after the time it gives",
		500: "an internal error in DPS",
	}
)

// errorMeaning explains a record's error code: the code's own meaning when
// documented, else its HTTP status family's, else "".
func errorMeaning(code int32) string {
	if m, ok := errorCodeMeaning[code]; ok {
		return m
	}
	if m, ok := httpStatusMeaning[code/1000]; ok {
		return fmt.Sprintf("HTTP %d: %s", code/1000, m)
	}
	return ""
}

// recordMeaning is the lines that explain a record's state: status,
// substatus and error, each with its meaning.
func recordMeaning(s dps.DeviceRegistrationState) []string {
	with := func(label, value, meaning string) string {
		if meaning == "" {
			meaning = "not a documented value"
		}
		return fmt.Sprintf("%-10s %s — %s", label, value, meaning)
	}
	var out []string
	if s.Status != "" {
		out = append(out, with("Status", string(s.Status), statusMeaning[s.Status]))
	}
	if s.Substatus != "" {
		out = append(out, with("Substatus", string(s.Substatus), substatusMeaning[s.Substatus]))
	}
	if s.ErrorCode != 0 || s.ErrorMessage != "" {
		out = append(out, with("Error", fmt.Sprint(s.ErrorCode), errorMeaning(s.ErrorCode)))
		if s.ErrorMessage != "" {
			out = append(out, fmt.Sprintf("%-10s %s", "Message", s.ErrorMessage))
		}
	}
	return out
}
