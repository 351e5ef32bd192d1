package discovery_test

import (
	"context"
	"fmt"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/discovery"
	"github.com/dpsconsole/dpsconsole/dps/hub"
	"github.com/dpsconsole/dpsconsole/dps/signin"
)

// From sign-in to a DPS client, as a target picker does: sign in (device
// code shown by the caller), list what the identity sees, connect to the
// chosen DPS and its hubs with bearer tokens, remember the choice.
func Example() {
	ctx := context.Background()
	cloud := signin.CloudFromEnv() // Azure, or the emulator named by emulator.env
	cred, err := signin.NewCredential(signin.Options{Cloud: cloud, DeviceCode: func(_ context.Context, p signin.DeviceCodePrompt) error {
		fmt.Println(p.Message) // a console shows it in a dialog instead
		return nil
	}})
	if err != nil {
		return
	}
	disc, err := discovery.New(cred, discovery.Options{Cloud: cloud})
	if err != nil {
		return
	}
	all, err := disc.ListDPS(ctx, "") // every subscription
	if err != nil || len(all) == 0 {
		return
	}
	d := all[0]
	client, err := dps.NewClient(d.ServiceHost, cred, &dps.ClientOptions{ResourceID: d.ResourceID})
	if err != nil {
		return
	}
	for _, h := range d.Hubs {
		if _, err := hub.NewRegistryClient(h.Host, cred, nil); err != nil {
			return
		}
	}
	_ = discovery.SaveChoice("/path/to/state-dir", discovery.ChoiceOf(d, "", "login"))
	_ = client
}
