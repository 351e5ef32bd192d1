package tui

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/dpsconsole/dpsconsole/dps/discovery"
)

// s (ListKeys) is offered on a row only when ListKeys can read a key there:
// an active DPS whose ARM resource is known. Elsewhere s says why not.
func TestTargetsOfferListKeysOnlyWhereItApplies(t *testing.T) {
	c := testCommon(t, 120, 30)
	az := &Azure{List: func(context.Context) ([]discovery.DPS, error) { return nil, nil },
		Connect: func(context.Context, discovery.DPS, AuthMode) (*Target, error) {
			return nil, errors.New("no connecting here")
		}}
	v := newTargetsView(c, az)
	v.table.Append([]discovery.DPS{
		{Name: "live", ResourceGroup: "rg", SubscriptionID: "sub", ResourceID: "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Devices/provisioningServices/live",
			ServiceHost: "live.azure-devices-provisioning.net", State: "Active"},
		{Name: "paused", ResourceGroup: "rg", SubscriptionID: "sub", ResourceID: "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Devices/provisioningServices/paused",
			ServiceHost: "paused.azure-devices-provisioning.net", State: "Suspended"},
		{Name: "loose", ResourceID: "loose", ServiceHost: "loose.azure-devices-provisioning.net"},
	}, false)
	const offer = "s uses a shared access policy"
	for i, want := range []string{"", "DPS paused is Suspended", "DPS loose has no ARM resource group"} {
		if i > 0 {
			v.table.MoveBy(1)
		}
		offered := slices.Contains(v.Hints(), c.Keys.ListKeys)
		if offered != (want == "") || strings.Contains(plain(v.View()), offer) != (want == "") {
			t.Errorf("row %d: ListKeys offered %v in the footer, in the body:\n%s", i, offered, plain(v.View()))
		}
		if want == "" {
			continue
		}
		f := flashOf(t, v.Update(press("s")))
		if !strings.Contains(f.text, want) || f.level != levelWarning || v.doing != "" {
			t.Errorf("row %d: s flashed %q (doing %q), want a warning with %q", i, f.text, v.doing, want)
		}
	}
}
