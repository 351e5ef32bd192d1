package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/keys"
)

// enrollmentFields points at the settings an enrollment group and an
// individual enrollment share, so one set of flags edits either.
type enrollmentFields struct {
	attestation        *dps.AttestationMechanism
	capabilities       **dps.DeviceCapabilities
	initialTwin        **dps.InitialTwin
	provisioningStatus *dps.ProvisioningStatus
	reprovisionPolicy  **dps.ReprovisionPolicy
	allocationPolicy   *dps.AllocationPolicy
	iotHubs            *[]string
	customAllocation   **dps.CustomAllocationDefinition
	etag               *string // not a setting: the version an update writes over
}

func groupFields(g *dps.EnrollmentGroup) enrollmentFields {
	return enrollmentFields{&g.Attestation, &g.Capabilities, &g.InitialTwin, &g.ProvisioningStatus,
		&g.ReprovisionPolicy, &g.AllocationPolicy, &g.IoTHubs, &g.CustomAllocationDefinition, &g.ETag}
}

func individualFields(e *dps.IndividualEnrollment) enrollmentFields {
	return enrollmentFields{&e.Attestation, &e.Capabilities, &e.InitialTwin, &e.ProvisioningStatus,
		&e.ReprovisionPolicy, &e.AllocationPolicy, &e.IoTHubs, &e.CustomAllocationDefinition, &e.ETag}
}

// settingsFlags are the create/update flags of groups and enrollments.
type settingsFlags struct {
	primaryKey, secondaryKey string
	allocationPolicy         string
	iotHubs                  []string
	provisioningStatus       string
	reprovisionPolicy        string
	twinTags, twinProperties string
	webhookURL               string
	edge                     bool
}

func (f *settingsFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.primaryKey, "primary-key", "", "primary symmetric key, base64 (16-64 bytes); DPS generates one when left out on create")
	fs.StringVar(&f.secondaryKey, "secondary-key", "", "secondary symmetric key, base64 (16-64 bytes); DPS generates one when left out on create")
	fs.StringVar(&f.allocationPolicy, "allocation-policy", "", "hashed, geoLatency, static or custom (default: the DPS instance's policy)")
	fs.StringSliceVar(&f.iotHubs, "iot-hubs", nil, "hub host names devices may be assigned to, separated by commas (default: all linked hubs)")
	fs.StringVar(&f.provisioningStatus, "provisioning-status", "", "enabled or disabled")
	fs.StringVar(&f.reprovisionPolicy, "reprovision-policy", "", "on re-registration: migrate (re-assign and migrate data, the default), reset (re-assign with the initial twin) or never")
	fs.StringVar(&f.twinTags, "initial-twin-tags", "", `initial twin tags, a JSON object, e.g. '{"site":"oslo"}'`)
	fs.StringVar(&f.twinProperties, "initial-twin-properties", "", `initial desired properties, a JSON object, e.g. '{"interval":30}'`)
	fs.StringVar(&f.webhookURL, "webhook-url", "", "custom allocation webhook URL (implies --allocation-policy custom)")
	fs.BoolVar(&f.edge, "edge", false, "devices are IoT Edge devices")
}

// settingNames are the flags register adds.
var settingNames = []string{"primary-key", "secondary-key", "allocation-policy", "iot-hubs", "provisioning-status",
	"reprovision-policy", "initial-twin-tags", "initial-twin-properties", "webhook-url", "edge"}

// anyChanged reports whether the command line set any of names or of the
// setting flags.
func anyChanged(fs *pflag.FlagSet, names ...string) bool {
	for _, n := range append(names, settingNames...) {
		if fs.Changed(n) {
			return true
		}
	}
	return false
}

// apply writes the flags the user set (and only those) into dst.
func (f *settingsFlags) apply(fs *pflag.FlagSet, dst enrollmentFields) error {
	set := fs.Changed
	if dst.attestation.Type == "" {
		dst.attestation.Type = dps.AttestationSymmetricKey
	}
	for _, k := range []struct {
		flag string
		val  string
		dst  func(*dps.SymmetricKeyAttestation) *dps.Secret
	}{
		{"primary-key", f.primaryKey, func(s *dps.SymmetricKeyAttestation) *dps.Secret { return &s.PrimaryKey }},
		{"secondary-key", f.secondaryKey, func(s *dps.SymmetricKeyAttestation) *dps.Secret { return &s.SecondaryKey }},
	} {
		if !set(k.flag) {
			continue
		}
		key, err := keys.ParseKey(k.val)
		if err != nil {
			return usagef("flag --%s: %v", k.flag, err)
		}
		if dst.attestation.Type != dps.AttestationSymmetricKey {
			return usagef("flag --%s: this enrollment uses %s attestation, not symmetric keys", k.flag, dst.attestation.Type)
		}
		if dst.attestation.SymmetricKey == nil {
			dst.attestation.SymmetricKey = &dps.SymmetricKeyAttestation{}
		}
		*k.dst(dst.attestation.SymmetricKey) = dps.Secret(key.Base64())
	}
	if set("allocation-policy") {
		p, err := parseAllocationPolicy(f.allocationPolicy)
		if err != nil {
			return err
		}
		*dst.allocationPolicy = p
	}
	if set("iot-hubs") {
		hubs := []string{}
		for _, h := range f.iotHubs {
			if h = strings.TrimSpace(h); h != "" {
				hubs = append(hubs, h)
			}
		}
		*dst.iotHubs = hubs
	}
	if set("provisioning-status") {
		switch strings.ToLower(f.provisioningStatus) {
		case "enabled":
			*dst.provisioningStatus = dps.ProvisioningEnabled
		case "disabled":
			*dst.provisioningStatus = dps.ProvisioningDisabled
		default:
			return usagef("flag --provisioning-status %q: use enabled or disabled", f.provisioningStatus)
		}
	}
	if set("reprovision-policy") {
		var p dps.ReprovisionPolicy
		switch strings.ToLower(f.reprovisionPolicy) {
		case "migrate":
			p = dps.ReprovisionPolicy{UpdateHubAssignment: true, MigrateDeviceData: true}
		case "reset":
			p = dps.ReprovisionPolicy{UpdateHubAssignment: true}
		case "never":
			p = dps.ReprovisionPolicy{}
		default:
			return usagef("flag --reprovision-policy %q: use migrate, reset or never", f.reprovisionPolicy)
		}
		*dst.reprovisionPolicy = &p
	}
	if set("initial-twin-tags") || set("initial-twin-properties") {
		twin := *dst.initialTwin
		if twin == nil {
			twin = &dps.InitialTwin{}
		}
		if set("initial-twin-tags") {
			tags, err := parseTwinCollection("--initial-twin-tags", f.twinTags)
			if err != nil {
				return err
			}
			twin.Tags = tags
		}
		if set("initial-twin-properties") {
			desired, err := parseTwinCollection("--initial-twin-properties", f.twinProperties)
			if err != nil {
				return err
			}
			twin.Properties = &dps.InitialTwinProperties{Desired: desired}
		}
		*dst.initialTwin = twin
	}
	if set("webhook-url") {
		if !strings.HasPrefix(f.webhookURL, "https://") && !strings.HasPrefix(f.webhookURL, "http://") {
			return usagef("flag --webhook-url %q: give an http(s) URL", keys.MaskURL(f.webhookURL))
		}
		*dst.customAllocation = &dps.CustomAllocationDefinition{WebhookURL: f.webhookURL, APIVersion: dps.APIVersion}
		if !set("allocation-policy") {
			*dst.allocationPolicy = dps.AllocationCustom
		}
	}
	if set("edge") {
		*dst.capabilities = &dps.DeviceCapabilities{IoTEdge: f.edge}
	}
	switch {
	case *dst.allocationPolicy == dps.AllocationCustom && *dst.customAllocation == nil:
		return usagef("custom allocation needs --webhook-url")
	case *dst.allocationPolicy == dps.AllocationStatic && len(*dst.iotHubs) != 1:
		return usagef("static allocation needs exactly one hub in --iot-hubs")
	}
	return nil
}

func parseAllocationPolicy(s string) (dps.AllocationPolicy, error) {
	for _, p := range []dps.AllocationPolicy{dps.AllocationHashed, dps.AllocationGeoLatency, dps.AllocationStatic, dps.AllocationCustom} {
		if strings.EqualFold(s, string(p)) {
			return p, nil
		}
	}
	return "", usagef("flag --allocation-policy %q: use hashed, geoLatency, static or custom", s)
}

func parseTwinCollection(flag, s string) (dps.TwinCollection, error) {
	var c dps.TwinCollection
	if err := json.Unmarshal([]byte(s), &c); err != nil || c == nil {
		return nil, usagef(`flag %s: give a JSON object, e.g. '{"key":"value"}' (%v)`, flag, errOrNull(err))
	}
	return c, nil
}

func errOrNull(err error) any {
	if err == nil {
		return "got null"
	}
	return err
}

// keepKeys copies the current keys into att before a PUT that was built from
// a GET (which hides them), so an update never changes keys by omission.
func keepKeys(ctx context.Context, att *dps.AttestationMechanism, read func(context.Context) (dps.AttestationMechanism, error)) error {
	if att.Type != dps.AttestationSymmetricKey || (att.SymmetricKey != nil && att.SymmetricKey.PrimaryKey != "" && att.SymmetricKey.SecondaryKey != "") {
		return nil
	}
	cur, err := read(ctx)
	if err != nil {
		return fmt.Errorf("read the current keys: %s", dps.ErrorMessage(err))
	}
	if cur.SymmetricKey == nil {
		return nil
	}
	if att.SymmetricKey == nil {
		att.SymmetricKey = &dps.SymmetricKeyAttestation{}
	}
	if att.SymmetricKey.PrimaryKey == "" {
		att.SymmetricKey.PrimaryKey = cur.SymmetricKey.PrimaryKey
	}
	if att.SymmetricKey.SecondaryKey == "" {
		att.SymmetricKey.SecondaryKey = cur.SymmetricKey.SecondaryKey
	}
	return nil
}

// showSettings prints the shared settings in the table form of show.
func showSettings(w io.Writer, f enrollmentFields, showKeys bool) {
	att := f.attestation
	primary, secondary := "", ""
	if att.SymmetricKey != nil {
		primary, secondary = att.SymmetricKey.PrimaryKey.String(), att.SymmetricKey.SecondaryKey.String()
		if showKeys {
			primary, secondary = att.SymmetricKey.PrimaryKey.Reveal(), att.SymmetricKey.SecondaryKey.Reveal()
		}
	}
	edge := false
	if *f.capabilities != nil {
		edge = (*f.capabilities).IoTEdge
	}
	reprov := ""
	if p := *f.reprovisionPolicy; p != nil {
		reprov = reprovisionName(*p)
	}
	webhook := ""
	if c := *f.customAllocation; c != nil {
		webhook = c.WebhookURL
		if !showKeys {
			webhook = keys.MaskURL(webhook)
		}
		webhook += " (api-version " + c.APIVersion + ")"
	}
	tags, desired := "", ""
	if t := *f.initialTwin; t != nil {
		tags = jsonCell(t.Tags)
		if t.Properties != nil {
			desired = jsonCell(t.Properties.Desired)
		}
	}
	fields(w,
		"Attestation", string(att.Type),
		"Primary key", primary,
		"Secondary key", secondary,
		"Provisioning status", string(*f.provisioningStatus),
		"Allocation policy", string(*f.allocationPolicy),
		"IoT hubs", strings.Join(*f.iotHubs, ", "),
		"Webhook", webhook,
		"Reprovision policy", reprov,
		"IoT Edge", boolCell(edge),
		"Initial twin tags", tags,
		"Initial desired properties", desired,
	)
}

func reprovisionName(p dps.ReprovisionPolicy) string {
	switch {
	case !p.UpdateHubAssignment:
		return "never"
	case p.MigrateDeviceData:
		return "migrate"
	default:
		return "reset"
	}
}
