package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/discovery"
	"github.com/dpsconsole/dpsconsole/dps/signin"
)

// Values of --auth and --target.
const (
	authSAS        = "sas"          // a connection string's shared access key
	authLogin      = "login"        // Microsoft Entra ID (azidentity's default chain)
	authSASFromARM = "sas-from-arm" // sign in, then read a shared access key with ARM's ListKeys
	authDeviceCode = "device-code"  // Microsoft Entra ID with a device code alone

	targetEmulator = "emulator"
	targetAzure    = "azure"
)

// azureFlags are the global flags that pick a DPS in Azure and how to sign in.
type azureFlags struct {
	auth, target, tenant             string
	dps, resourceGroup, subscription string
	tenantSource                     string // where tenant came from, for messages; "" is --tenant
}

// adoptTenant takes the tenant remembered with c unless --tenant was given,
// and remembers where it came from, so no message calls it --tenant.
func (a *app) adoptTenant(c discovery.Choice) {
	if a.azure.tenant != "" || c.TenantID == "" {
		return
	}
	a.azure.tenant = c.TenantID
	a.azure.tenantSource = fmt.Sprintf("the tenant remembered in %s (from an earlier --tenant)", filepath.Join(a.stateDir, discovery.ChoiceFile))
}

func addAzureFlags(pf *pflag.FlagSet, f *azureFlags) {
	pf.StringVar(&f.auth, "auth", "", "how to authenticate: sas (a connection string's key), login (Microsoft Entra ID: az login, environment, workload or managed identity, else, on a terminal, a device code; the default with --dps), device-code (Entra ID with a device code alone) or sas-from-arm (a key read with ARM ListKeys)")
	pf.StringVar(&f.target, "target", "", "emulator (the embedded emulator, the default without a connection string) or azure (a DPS found with ARM: --dps, else the one chosen last)")
	pf.StringVar(&f.tenant, "tenant", "", "Microsoft Entra tenant (ID or domain) to sign in to; default: the one of your az login or $AZURE_TENANT_ID")
	pf.StringVar(&f.dps, "dps", "", "name of a DPS in Azure to use, found with ARM and signed in with Microsoft Entra ID (dpsconsole targets list shows them)")
	pf.StringVar(&f.resourceGroup, "resource-group", "", "resource group of the --dps, when its name is not unique")
	pf.StringVar(&f.subscription, "subscription", "", "subscription (ID or name) to look in; default: every subscription the identity can see")
}

// targetFlags are the global flags that pick a DPS to talk to, or how to
// reach it and sign in to it.
var targetFlags = []string{"connection-string", "ca-file", "dps", "auth", "target", "tenant", "resource-group", "subscription"}

// changedTargetFlag is the first target flag given on cmd's command line,
// but those in except; "" if none.
func changedTargetFlag(cmd *cobra.Command, except ...string) string {
	for _, f := range targetFlags {
		if cmd.Flags().Changed(f) && !slices.Contains(except, f) {
			return f
		}
	}
	return ""
}

// wantsAzure reports whether the flags ask for a DPS found with ARM, and
// refuses combinations that ask for two targets at once.
func (a *app) wantsAzure() (bool, error) {
	f := a.azure
	switch f.auth {
	case "", authSAS, authLogin, authDeviceCode, authSASFromARM:
	default:
		return false, usagef("flag --auth %q: use sas, login, device-code or sas-from-arm", f.auth)
	}
	switch f.target {
	case "", targetEmulator, targetAzure:
	default:
		return false, usagef("flag --target %q: use emulator or azure", f.target)
	}
	embeddedEntra := f.target == targetEmulator && f.auth == authLogin // the embedded emulator, signed in
	azure := !embeddedEntra && (f.dps != "" || f.target == targetAzure || f.auth == authLogin || f.auth == authDeviceCode || f.auth == authSASFromARM)
	switch {
	case f.target == targetEmulator && (azure || a.connectionString != "" || f.dps != ""):
		return false, usagef("--target emulator is the embedded emulator: leave out --dps, --connection-string and --auth other than login with it")
	case a.connectionString != "" && azure:
		return false, usagef("--connection-string names its DPS and signs with its key: leave out --dps, --target azure and --auth %s with it", cmp.Or(f.auth, authLogin))
	case f.auth == authSAS && azure:
		return false, usagef("--auth sas needs --connection-string; for a DPS found with --dps, a shared access key is --auth sas-from-arm")
	case !azure && (f.resourceGroup != "" || f.subscription != "" || f.tenant != ""):
		return false, usagef("--resource-group, --subscription and --tenant find a DPS in Azure: give --dps NAME (or --target azure) with them")
	}
	return azure, nil
}

// signedIn is a Microsoft Entra ID sign-in and the ARM client that uses it.
type signedIn struct {
	cred azcore.TokenCredential
	disc *discovery.Client
}

// signIn makes the Entra ID credential of the flags. A device code, the
// last resort when stderr is a terminal (elsewhere nobody would enter it and
// sign-in would wait for it to expire), prints its prompt there.
// Notes on a listing (a subscription skipped) go to stderr too.
func (a *app) signIn(tr *http.Client) (*signedIn, error) {
	return a.signInShowing(tr, nil, func(msg string) { fmt.Fprintf(a.err, "note: %s\n", msg) })
}

// signInShowing is signIn with the device-code prompt shown by show (the
// console's dialog) instead of on stderr, nil is stderr; and the notes of
// ARM listings given to note.
func (a *app) signInShowing(tr *http.Client, show func(context.Context, signin.DeviceCodePrompt) error, note func(string)) (*signedIn, error) {
	cloud := signin.CloudFromEnv()
	o := signin.Options{TenantID: a.azure.tenant, TenantSource: a.azure.tenantSource, Cloud: cloud, Transport: tr, DeviceCodeOnly: a.azure.auth == authDeviceCode, DeviceCode: show}
	if show == nil && (o.DeviceCodeOnly || isTerminal(a.err)) {
		o.DeviceCode = func(_ context.Context, p signin.DeviceCodePrompt) error {
			fmt.Fprintln(a.err, p.Message)
			return nil
		}
	}
	cred, err := signin.NewCredential(o)
	if err != nil {
		return nil, usagef("%v", err)
	}
	disc, err := discovery.New(cred, discovery.Options{Cloud: cloud, Transport: tr, TenantSource: a.azure.tenantSource, Note: note})
	if err != nil {
		return nil, err
	}
	return &signedIn{cred: cred, disc: disc}, nil
}

func newTargetsCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "targets",
		Short: "List the DPS instances your Azure identity can see",
	}
	var output string
	list := &cobra.Command{
		Use:   "list",
		Short: "List the DPS instances of your subscriptions, with ID scope, host names and linked hubs",
		Long: `List the DPS instances the signed-in identity can see through Azure Resource
Manager: name, resource group, location, ID scope, service and device host
names, and linked hubs with their allocation weight and whether allocation
policies apply to them. It signs in like --auth login: environment, workload
or managed identity, az or azd login, else a device code. Any of them may be
given with --dps NAME to every other command.`,
		Example: `  az login && dpsconsole targets list
  dpsconsole targets list --subscription "My subscription" --resource-group iot-rg --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkListFlags(output, 1); err != nil {
				return err
			}
			if a.azure.dps != "" || a.azure.target == targetEmulator || a.connectionString != "" {
				return usagef("targets list lists every DPS: leave out --dps, --target emulator and --connection-string (--subscription and --resource-group narrow it)")
			}
			return a.listTargets(cmd.Context(), output)
		},
	}
	list.Flags().StringVarP(&output, "output", "o", outputTable,
		"output format: table, json (one array) or jsonl (one DPS a line; the ARM SDK decodes what ARM sends, so these are discovery's items, not ARM's bytes)")
	cmd.AddCommand(list)
	return cmd
}

func (a *app) listTargets(ctx context.Context, output string) error {
	caPEM, err := a.readCA()
	if err != nil {
		return err
	}
	tr, err := dps.NewTransport(caPEM)
	if err != nil {
		return err
	}
	defer tr.CloseIdleConnections()
	s, err := a.signIn(tr)
	if err != nil {
		return err
	}
	all, err := a.listDPS(ctx, s)
	if err != nil {
		return err
	}
	switch output {
	case outputJSON:
		if all == nil {
			all = []discovery.DPS{}
		}
		return writeJSON(a.out, all)
	case outputJSONL:
		enc := json.NewEncoder(a.out)
		for _, d := range all {
			if err := enc.Encode(d); err != nil {
				return err
			}
		}
		return nil
	}
	t := newTable(a.out, column{"NAME", 26}, column{"RESOURCE GROUP", 26}, column{"LOCATION", 14}, column{"ID SCOPE", 12},
		column{"SERVICE HOST", 36}, column{"DEVICE HOST", 36}, column{"LINKED HUBS (weight, applies allocation)", 0})
	for _, d := range all {
		var hubs []string
		for _, h := range d.Hubs {
			w := "-"
			if h.AllocationWeight != nil {
				w = strconv.Itoa(int(*h.AllocationWeight))
			}
			hubs = append(hubs, fmt.Sprintf("%s (%s, %t)", h.Host, w, h.ApplyAllocationPolicy))
		}
		t.row(d.Name, d.ResourceGroup, d.Location, d.IDScope, d.ServiceHost, d.DeviceHost, strings.Join(hubs, ", "))
	}
	fmt.Fprintln(a.out, plural(len(all), "DPS instance"))
	return nil
}

// listDPS lists the DPS instances s sees, narrowed by --subscription and
// --resource-group.
func (a *app) listDPS(ctx context.Context, s *signedIn) ([]discovery.DPS, error) {
	sub := a.azure.subscription
	if sub != "" {
		// Find resolves a subscription name too; listing needs the ID.
		var err error
		if sub, err = s.disc.SubscriptionID(ctx, sub); err != nil {
			return nil, err
		}
	}
	all, err := s.disc.ListDPS(ctx, sub)
	if err != nil {
		return nil, signin.Explain(err)
	}
	if rg := a.azure.resourceGroup; rg != "" {
		all = slices.DeleteFunc(all, func(d discovery.DPS) bool { return !strings.EqualFold(d.ResourceGroup, rg) })
	}
	return all, nil
}
