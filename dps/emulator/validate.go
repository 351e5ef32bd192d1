package emulator

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/keys"
)

// validateGroup checks a group sent to PUT or bulk and fills in what DPS
// fills in: generated keys, enabled status, the default reprovision policy.
// Its errors name the field and the fix.
func (e *Emulator) validateGroup(g *dps.EnrollmentGroup, pathID string) error {
	if g.EnrollmentGroupID == "" {
		g.EnrollmentGroupID = pathID
	}
	if !strings.EqualFold(g.EnrollmentGroupID, pathID) {
		return fmt.Errorf("enrollmentGroupId %q in the body does not match %q in the URL", g.EnrollmentGroupID, pathID)
	}
	if err := keys.ValidateRegistrationID(g.EnrollmentGroupID); err != nil {
		return fmt.Errorf("enrollment group ID: %s", strings.TrimPrefix(err.Error(), "invalid registration ID: "))
	}
	if err := checkAttestation(&g.Attestation, false); err != nil {
		return err
	}
	c := common{&g.ProvisioningStatus, &g.ReprovisionPolicy, &g.Capabilities, &g.AllocationPolicy, &g.IoTHubs, &g.IoTHubHostName, g.CustomAllocationDefinition}
	return e.checkCommon(c)
}

// validateEnrollment does the same for an individual enrollment.
func (e *Emulator) validateEnrollment(en *dps.IndividualEnrollment, pathID string) error {
	if en.RegistrationID == "" {
		en.RegistrationID = pathID
	}
	if !strings.EqualFold(en.RegistrationID, pathID) {
		return fmt.Errorf("registrationId %q in the body does not match %q in the URL", en.RegistrationID, pathID)
	}
	if err := keys.ValidateRegistrationID(en.RegistrationID); err != nil {
		return err
	}
	if en.DeviceID != "" && len(en.DeviceID) > 128 {
		return fmt.Errorf("deviceId is %d characters long; IoT Hub allows 128", len(en.DeviceID))
	}
	if err := checkAttestation(&en.Attestation, true); err != nil {
		return err
	}
	c := common{&en.ProvisioningStatus, &en.ReprovisionPolicy, &en.Capabilities, &en.AllocationPolicy, &en.IoTHubs, &en.IoTHubHostName, en.CustomAllocationDefinition}
	return e.checkCommon(c)
}

// checkAttestation normalises the attestation type and makes 64-byte keys
// for a symmetric-key attestation that leaves them out.
func checkAttestation(a *dps.AttestationMechanism, individual bool) error {
	switch strings.ToLower(string(a.Type)) {
	case "":
		return errors.New(`attestation.type is required: use "symmetricKey"`)
	case "symmetrickey":
		a.Type = dps.AttestationSymmetricKey
		if a.SymmetricKey == nil {
			a.SymmetricKey = &dps.SymmetricKeyAttestation{}
		}
		for _, k := range []struct {
			name string
			v    *dps.Secret
		}{{"primaryKey", &a.SymmetricKey.PrimaryKey}, {"secondaryKey", &a.SymmetricKey.SecondaryKey}} {
			if *k.v == "" {
				*k.v = dps.Secret(keys.GenerateKey().Base64())
				continue
			}
			key, err := keys.ParseKey(k.v.Reveal())
			if err != nil {
				return fmt.Errorf("attestation.symmetricKey.%s: %w", k.name, err)
			}
			*k.v = dps.Secret(key.Base64())
		}
	case "x509":
		a.Type = dps.AttestationX509
		if len(a.X509) == 0 {
			return errors.New("attestation.x509 is required for x509 attestation")
		}
	case "tpm":
		if !individual {
			return errors.New("enrollment groups cannot use TPM attestation; use symmetricKey or x509")
		}
		a.Type = dps.AttestationTPM
		if len(a.TPM) == 0 {
			return errors.New("attestation.tpm is required for tpm attestation")
		}
	default:
		return fmt.Errorf("attestation.type %q is not supported; use symmetricKey, x509 or tpm", a.Type)
	}
	return nil
}

// common points at the fields groups and individual enrollments share.
type common struct {
	status      *dps.ProvisioningStatus
	reprov      **dps.ReprovisionPolicy
	caps        **dps.DeviceCapabilities
	policy      *dps.AllocationPolicy
	hubs        *[]string
	legacyHub   *string
	customAlloc *dps.CustomAllocationDefinition
}

func (e *Emulator) checkCommon(c common) error {
	switch strings.ToLower(string(*c.status)) {
	case "", "enabled":
		*c.status = dps.ProvisioningEnabled
	case "disabled":
		*c.status = dps.ProvisioningDisabled
	default:
		return fmt.Errorf("provisioningStatus %q must be enabled or disabled", *c.status)
	}
	if *c.reprov == nil {
		*c.reprov = &dps.ReprovisionPolicy{UpdateHubAssignment: true, MigrateDeviceData: true}
	}
	if *c.caps == nil {
		*c.caps = &dps.DeviceCapabilities{}
	}
	if *c.policy != "" {
		p, ok := allocationPolicy(*c.policy)
		if !ok {
			return fmt.Errorf("allocationPolicy %q must be hashed, geoLatency, static or custom", *c.policy)
		}
		*c.policy = p
	}
	canonical := func(name string) (string, error) {
		for _, h := range e.hubs {
			if strings.EqualFold(h.HostName, name) {
				return h.HostName, nil
			}
		}
		names := make([]string, len(e.hubs))
		for i, h := range e.hubs {
			names[i] = h.HostName
		}
		return "", fmt.Errorf("IoT hub %q is not linked to this DPS; linked hubs: %s", name, strings.Join(names, ", "))
	}
	var err error
	for i, h := range *c.hubs {
		if (*c.hubs)[i], err = canonical(h); err != nil {
			return fmt.Errorf("iotHubs: %w", err)
		}
	}
	if *c.legacyHub != "" {
		if *c.legacyHub, err = canonical(*c.legacyHub); err != nil {
			return fmt.Errorf("iotHubHostName: %w", err)
		}
	}
	switch *c.policy {
	case dps.AllocationStatic:
		if len(*c.hubs) > 1 || len(*c.hubs) == 0 && *c.legacyHub == "" {
			return fmt.Errorf("static allocation needs exactly one IoT hub in iotHubs (it has %d)", len(*c.hubs))
		}
	case dps.AllocationCustom:
		ca := c.customAlloc
		if ca == nil || ca.WebhookURL == "" || ca.APIVersion == "" {
			return errors.New("custom allocation needs customAllocationDefinition with webhookUrl and apiVersion (e.g. 2021-10-01)")
		}
		u, err := url.Parse(ca.WebhookURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return errors.New("customAllocationDefinition.webhookUrl must be an absolute http(s) URL")
		}
	}
	return nil
}

// allocationPolicy matches a policy name case-insensitively (the docs write
// geolatency, the spec geoLatency).
func allocationPolicy(p dps.AllocationPolicy) (dps.AllocationPolicy, bool) {
	for _, known := range []dps.AllocationPolicy{dps.AllocationHashed, dps.AllocationGeoLatency, dps.AllocationStatic, dps.AllocationCustom} {
		if strings.EqualFold(string(p), string(known)) {
			return known, true
		}
	}
	return "", false
}
