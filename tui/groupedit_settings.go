package tui

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/keys"
)

// groupSettings is what the edit form changes of a group, each as one
// comparable string, so that two versions of a group compare field by
// field: what the operator changed, and what changed elsewhere meanwhile.
type groupSettings struct {
	status, allocation, hubs, reprovision, webhook, twin string
}

// settingField names one field of groupSettings for the conflict view.
type settingField struct {
	name string
	at   func(*groupSettings) *string
}

var settingFields = []settingField{
	{"Status", func(s *groupSettings) *string { return &s.status }},
	{"Allocation", func(s *groupSettings) *string { return &s.allocation }},
	{"Hubs", func(s *groupSettings) *string { return &s.hubs }},
	{"Reprovision", func(s *groupSettings) *string { return &s.reprovision }},
	{"Webhook URL", func(s *groupSettings) *string { return &s.webhook }},
	{"Initial twin", func(s *groupSettings) *string { return &s.twin }},
}

var (
	statusChoices      = []string{string(dps.ProvisioningEnabled), string(dps.ProvisioningDisabled)}
	allocationChoices  = []string{string(dps.AllocationHashed), string(dps.AllocationGeoLatency), string(dps.AllocationStatic), string(dps.AllocationCustom)}
	reprovisionChoices = []string{"migrate", "reset", "never"}
)

// settingsOf reads a group's settings as the form shows them, DPS's
// defaults filled in (no status is enabled, no allocation hashed, no
// reprovision policy migrate), so an untouched field compares equal.
func settingsOf(g dps.EnrollmentGroup) groupSettings {
	s := groupSettings{status: string(dps.ProvisioningEnabled), allocation: string(dps.AllocationHashed),
		reprovision: reprovisionName(g.ReprovisionPolicy)}
	if g.ProvisioningStatus != "" {
		s.status = string(g.ProvisioningStatus)
	}
	if i := slices.IndexFunc(allocationChoices, func(c string) bool { return strings.EqualFold(c, string(g.AllocationPolicy)) }); i >= 0 {
		s.allocation = allocationChoices[i]
	}
	hubs := g.IoTHubs
	if len(hubs) == 0 && g.IoTHubHostName != "" {
		hubs = []string{g.IoTHubHostName}
	}
	s.hubs = joinHubs(hubs)
	if c := g.CustomAllocationDefinition; c != nil {
		s.webhook = c.WebhookURL
	}
	if g.InitialTwin != nil {
		b, _ := json.Marshal(g.InitialTwin) // maps marshal with sorted keys: a canonical form
		s.twin = string(b)
	}
	return s
}

// joinHubs is a set of hubs as one string, in a stable order.
func joinHubs(hubs []string) string {
	hubs = slices.Clone(hubs)
	slices.SortFunc(hubs, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
	return strings.Join(hubs, ", ")
}

func splitHubs(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ", ")
}

// reprovisionName is the form's name of a reprovision policy.
func reprovisionName(p *dps.ReprovisionPolicy) string {
	switch {
	case p == nil || (p.UpdateHubAssignment && p.MigrateDeviceData):
		return "migrate"
	case p.UpdateHubAssignment:
		return "reset"
	}
	return "never"
}

// reprovisionPolicy is the policy a form's name stands for.
func reprovisionPolicy(name string) (*dps.ReprovisionPolicy, bool) {
	switch name {
	case "migrate":
		return &dps.ReprovisionPolicy{UpdateHubAssignment: true, MigrateDeviceData: true}, true
	case "reset":
		return &dps.ReprovisionPolicy{UpdateHubAssignment: true}, true
	case "never":
		return &dps.ReprovisionPolicy{}, true
	}
	return nil, false
}

// applySettings writes s over g, touching only the fields where s differs
// from g's own settings: what the operator left alone goes back exactly as
// DPS sent it.
func applySettings(g dps.EnrollmentGroup, s groupSettings) dps.EnrollmentGroup {
	was := settingsOf(g)
	if s.status != was.status {
		g.ProvisioningStatus = dps.ProvisioningStatus(s.status)
	}
	if s.allocation != was.allocation {
		g.AllocationPolicy = dps.AllocationPolicy(s.allocation)
	}
	if s.hubs != was.hubs {
		g.IoTHubs, g.IoTHubHostName = splitHubs(s.hubs), ""
	}
	if s.reprovision != was.reprovision {
		g.ReprovisionPolicy, _ = reprovisionPolicy(s.reprovision)
	}
	if s.webhook != was.webhook {
		g.CustomAllocationDefinition = nil
		if s.webhook != "" {
			g.CustomAllocationDefinition = &dps.CustomAllocationDefinition{WebhookURL: s.webhook, APIVersion: dps.APIVersion}
		}
	}
	if s.twin != was.twin {
		g.InitialTwin = nil
		if s.twin != "" {
			g.InitialTwin = new(dps.InitialTwin)
			json.Unmarshal([]byte(s.twin), g.InitialTwin) // checked by parseInitialTwin
		}
	}
	return g
}

// rebase puts the operator's changes (mine against base) on top of theirs:
// the reload after a conflict keeps what the operator did and takes every
// other field from the group as it is now.
func rebase(base, theirs, mine groupSettings) groupSettings {
	out := theirs
	for _, f := range settingFields {
		if *f.at(&mine) != *f.at(&base) {
			*f.at(&out) = *f.at(&mine)
		}
	}
	return out
}

// settingChange is one field that changed elsewhere: its value on DPS now
// and the operator's.
type settingChange struct {
	field, theirs, yours string
	touched              bool // the operator changed it too
}

// changesElsewhere lists the fields theirs changed since base.
func changesElsewhere(base, theirs, mine groupSettings) []settingChange {
	var out []settingChange
	for _, f := range settingFields {
		if b, t := *f.at(&base), *f.at(&theirs); b != t {
			out = append(out, settingChange{field: f.name, theirs: t, yours: *f.at(&mine), touched: *f.at(&mine) != b})
		}
	}
	return out
}

// shownSetting is a setting's value for the screen: the webhook's query
// (its function key) masked unless revealed, "—" for nothing.
func shownSetting(field, value string, revealed bool) string {
	switch {
	case value == "":
		return "—"
	case field == "Webhook URL" && !revealed:
		return keys.MaskURL(value)
	}
	return value
}

// parseInitialTwin checks the initial twin the operator typed: "" is none,
// else a JSON object of "tags" and "properties": {"desired": …}. It returns
// the canonical form settingsOf uses; an error names its line and column.
func parseInitialTwin(text string) (string, error) {
	if strings.TrimSpace(text) == "" {
		return "", nil
	}
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	var tw dps.InitialTwin
	err := dec.Decode(&tw)
	if err == nil && dec.More() {
		err = fmt.Errorf("more than one JSON value at %s: give one object", lineColumn(text, dec.InputOffset()+1))
	}
	if err != nil {
		return "", twinError(text, err)
	}
	b, _ := json.Marshal(&tw)
	return string(b), nil
}

// twinError says where and what is wrong with an initial twin.
func twinError(text string, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("Initial twin: %s: %s", lineColumn(text, syn.Offset), strings.TrimPrefix(syn.Error(), "json: "))
	case errors.As(err, &typ):
		what := "the twin must be an object"
		if typ.Field != "" {
			what = fmt.Sprintf("%q must be an object, not %s", typ.Field, typ.Value)
		}
		return fmt.Errorf("Initial twin: %s: %s", lineColumn(text, typ.Offset), what)
	case strings.Contains(err.Error(), "unknown field"):
		return fmt.Errorf("Initial twin: %s; an initial twin has only \"tags\" and \"properties\": {\"desired\": {…}}", strings.TrimPrefix(err.Error(), "json: "))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("Initial twin: %s: unexpected end of the JSON", lineColumn(text, int64(len(text))))
	}
	return fmt.Errorf("Initial twin: %s", strings.TrimPrefix(err.Error(), "json: "))
}

// lineColumn is "line L, column C" of the byte at offset (counted from 1,
// as encoding/json's offsets point just past the offending byte).
func lineColumn(text string, offset int64) string {
	off := int(min(max(offset, 1), int64(len(text))))
	before := text[:off]
	line := strings.Count(before, "\n") + 1
	start := strings.LastIndexByte(before, '\n') + 1
	col := utf8.RuneCountInString(before[start:])
	if col == 0 {
		col = 1
	}
	return fmt.Sprintf("line %d, column %d", line, col)
}

// indentTwin is an initial twin as the form shows it: indented, one
// property a line.
func indentTwin(canonical string) string {
	if canonical == "" {
		return ""
	}
	var b bytes.Buffer
	if json.Indent(&b, []byte(canonical), "", "  ") != nil {
		return canonical
	}
	return b.String()
}

// checkWebhook refuses a webhook URL DPS could not call.
func checkWebhook(allocation, raw string) error {
	if raw == "" {
		if allocation == string(dps.AllocationCustom) {
			return errors.New("Webhook URL: custom allocation calls a webhook: give its https:// URL")
		}
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("Webhook URL: %s is not an http(s) URL with a host", keys.MaskURL(raw))
	}
	return nil
}
