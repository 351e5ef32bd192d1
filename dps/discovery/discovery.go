// Package discovery finds the DPS instances an identity can see, through
// Azure Resource Manager with the Azure SDK for Go's resource-manager
// modules (armsubscriptions, armdeviceprovisioningservices): subscriptions,
// each DPS's ID scope, host names and linked hubs, and, only when asked, a
// shared access policy's connection string (ListKeys).
package discovery

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/deviceprovisioningservices/armdeviceprovisioningservices"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armsubscriptions"
)

// Options configure a Client.
type Options struct {
	// Cloud names ARM's endpoint and audience (signin.CloudFromEnv()); the
	// zero value is Azure's public cloud.
	Cloud cloud.Configuration
	// Transport sends the requests, e.g. trusting the emulator's CA.
	Transport policy.Transporter
	// TenantSource names the tenant in advice ("check --tenant"); "" is
	// "--tenant". A tenant remembered from an earlier run says so.
	TenantSource string
	// Note receives what the operator should know about a listing that
	// still went on, e.g. a subscription skipped; nil drops them.
	Note func(string)
}

// Client lists subscriptions and DPS instances. It is safe for concurrent use.
type Client struct {
	cred   azcore.TokenCredential
	opts   *arm.ClientOptions
	tenant string // how advice names the tenant: "--tenant" or where it was remembered
	note   func(string)
	subs   *armsubscriptions.Client

	mu   sync.Mutex
	dpsc map[string]*armdeviceprovisioningservices.IotDpsResourceClient // by subscription ID
}

// New makes a Client that signs in to ARM with cred.
func New(cred azcore.TokenCredential, opts Options) (*Client, error) {
	// DisableRPRegistration: on a 409 MissingSubscriptionRegistration the SDK
	// would register the resource provider itself, a write on the
	// subscription nobody asked for; the listing skips it with a note instead.
	ao := &arm.ClientOptions{ClientOptions: azcore.ClientOptions{Cloud: opts.Cloud, Transport: opts.Transport}, DisableRPRegistration: true}
	if ao.Cloud.ActiveDirectoryAuthorityHost == "" {
		ao.Cloud = cloud.AzurePublic
	}
	subs, err := armsubscriptions.NewClient(cred, ao)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	return &Client{cred: cred, opts: ao, subs: subs, tenant: cmp.Or(opts.TenantSource, "--tenant"), note: opts.Note, dpsc: map[string]*armdeviceprovisioningservices.IotDpsResourceClient{}}, nil
}

// Subscription is one subscription the identity can see.
type Subscription struct {
	ID       string `json:"id"` // the GUID
	Name     string `json:"name"`
	State    string `json:"state"`
	TenantID string `json:"tenantId"`
}

// Subscriptions lists the subscriptions the identity can see, by name.
func (c *Client) Subscriptions(ctx context.Context) ([]Subscription, error) {
	var out []Subscription
	pager := c.subs.NewListPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, c.armError("list the subscriptions", err)
		}
		for _, s := range page.Value {
			out = append(out, Subscription{ID: str(s.SubscriptionID), Name: str(s.DisplayName), State: str((*string)(s.State)), TenantID: str(s.TenantID)})
		}
	}
	slices.SortFunc(out, func(a, b Subscription) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
	return out, nil
}

// DPS is one provisioning service as ARM describes it.
type DPS struct {
	Name             string      `json:"name"`
	ResourceGroup    string      `json:"resourceGroup"`
	SubscriptionID   string      `json:"subscriptionId"`
	ResourceID       string      `json:"id"`
	Location         string      `json:"location"`
	IDScope          string      `json:"idScope"`
	ServiceHost      string      `json:"serviceHostName"` // the service API, for the dps client
	DeviceHost       string      `json:"deviceHostName"`  // where devices register
	AllocationPolicy string      `json:"allocationPolicy,omitempty"`
	State            string      `json:"state,omitempty"`
	Hubs             []LinkedHub `json:"iotHubs"`
}

// LinkedHub is a hub linked to a DPS. ARM masks its connection string's key,
// so it is not kept.
type LinkedHub struct {
	Host                  string `json:"name"` // the hub's host name
	Location              string `json:"location,omitempty"`
	AllocationWeight      *int32 `json:"allocationWeight,omitempty"`
	ApplyAllocationPolicy bool   `json:"applyAllocationPolicy"`
}

// ListDPS lists the DPS instances of one subscription, or of every
// subscription the identity can see when subscriptionID is "".
func (c *Client) ListDPS(ctx context.Context, subscriptionID string) ([]DPS, error) {
	ids := []string{subscriptionID}
	if subscriptionID == "" {
		subs, err := c.Subscriptions(ctx)
		if err != nil {
			return nil, err
		}
		ids = ids[:0]
		for _, s := range subs {
			ids = append(ids, s.ID)
		}
	}
	var out []DPS
	for _, id := range ids {
		found, err := c.listDPSOf(ctx, id)
		if isUnregisteredProvider(err) {
			// One subscription without the provider has no DPS; the others may.
			c.notef("subscription %s has not registered the Microsoft.Devices resource provider; skipped: az provider register --namespace Microsoft.Devices --subscription %s", id, id)
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, found...)
	}
	slices.SortFunc(out, func(a, b DPS) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
	return out, nil
}

// listDPSOf lists the DPS instances of one subscription.
func (c *Client) listDPSOf(ctx context.Context, subscriptionID string) ([]DPS, error) {
	dc, err := c.dpsClient(subscriptionID)
	if err != nil {
		return nil, err
	}
	var out []DPS
	pager := dc.NewListBySubscriptionPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, c.armError("list the DPS instances of subscription "+subscriptionID, err)
		}
		for _, d := range page.Value {
			out = append(out, describe(d))
		}
	}
	return out, nil
}

// isUnregisteredProvider reports whether err is ARM's 409 for a
// subscription that has not registered the resource provider.
func isUnregisteredProvider(err error) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusConflict && strings.EqualFold(re.ErrorCode, "MissingSubscriptionRegistration")
}

func (c *Client) notef(format string, args ...any) {
	if c.note != nil {
		c.note(fmt.Sprintf(format, args...))
	}
}

// Query names a DPS: its resource name and, to tell apart same-named
// instances, its resource group and subscription (ID or name).
type Query struct {
	Name, ResourceGroup, Subscription string
}

// Find resolves q to exactly one DPS. With a resource group and a
// subscription ID it reads the DPS directly; otherwise it lists and
// matches, and says which instances matched when more than one did.
func (c *Client) Find(ctx context.Context, q Query) (DPS, error) {
	if q.Name == "" {
		return DPS{}, errors.New("name the DPS (--dps NAME)")
	}
	sub, err := c.SubscriptionID(ctx, q.Subscription)
	if err != nil {
		return DPS{}, err
	}
	if sub != "" && q.ResourceGroup != "" {
		dc, err := c.dpsClient(sub)
		if err != nil {
			return DPS{}, err
		}
		r, err := dc.Get(ctx, q.Name, q.ResourceGroup, nil)
		if statusOf(err) == http.StatusNotFound {
			return DPS{}, fmt.Errorf("no DPS %q in resource group %s of subscription %s (dpsconsole targets list --subscription %s shows them)", q.Name, q.ResourceGroup, sub, sub)
		}
		if err != nil {
			return DPS{}, c.armError("read DPS "+q.Name, err)
		}
		return describe(&r.ProvisioningServiceDescription), nil
	}
	all, err := c.ListDPS(ctx, sub)
	if err != nil {
		return DPS{}, err
	}
	var found []DPS
	for _, d := range all {
		if strings.EqualFold(d.Name, q.Name) && (q.ResourceGroup == "" || strings.EqualFold(d.ResourceGroup, q.ResourceGroup)) {
			found = append(found, d)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		where := "any subscription the signed-in identity can see"
		if sub != "" {
			where = "subscription " + sub
		}
		if q.ResourceGroup != "" {
			where = "resource group " + q.ResourceGroup + " of " + where
		}
		return DPS{}, fmt.Errorf("no DPS named %q in %s; %s", q.Name, where, c.candidates(all))
	}
	var ids []string
	for _, d := range found {
		ids = append(ids, d.ResourceID)
	}
	return DPS{}, fmt.Errorf("%d DPS instances are named %q: %s; choose one with --resource-group and --subscription", len(found), q.Name, strings.Join(ids, ", "))
}

// candidates names the DPS instances seen, for a name not among them: the
// one meant is often there under another spelling or group.
func (c *Client) candidates(all []DPS) string {
	const shown = 10
	if len(all) == 0 {
		return "it sees no DPS at all: check " + c.tenant + ", --subscription and its role assignments (Reader on a DPS is enough to see it)"
	}
	var names []string
	for _, d := range all[:min(len(all), shown)] {
		names = append(names, d.Name+" (resource group "+d.ResourceGroup+")")
	}
	more := ""
	if len(all) > shown {
		more = fmt.Sprintf(" and %d more", len(all)-shown)
	}
	return "it sees " + strings.Join(names, ", ") + more + " (dpsconsole targets list shows them all)"
}

var guid = regexp.MustCompile(`^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$`)

// SubscriptionID resolves a subscription given by ID or by name; "" stays "".
func (c *Client) SubscriptionID(ctx context.Context, s string) (string, error) {
	if s == "" || guid.MatchString(s) {
		return s, nil
	}
	subs, err := c.Subscriptions(ctx)
	if err != nil {
		return "", err
	}
	var names []string
	for _, sub := range subs {
		if strings.EqualFold(sub.Name, s) {
			return sub.ID, nil
		}
		names = append(names, sub.Name)
	}
	return "", fmt.Errorf("no subscription named %q among those the signed-in identity can see (%s); give its name or ID", s, strings.Join(names, ", "))
}

func (c *Client) dpsClient(subscriptionID string) (*armdeviceprovisioningservices.IotDpsResourceClient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if dc := c.dpsc[subscriptionID]; dc != nil {
		return dc, nil
	}
	dc, err := armdeviceprovisioningservices.NewIotDpsResourceClient(subscriptionID, c.cred, c.opts)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	c.dpsc[subscriptionID] = dc
	return dc, nil
}

// ServiceConnectionString asks ARM for the keys of d's shared access
// policies (ListKeys, which needs a role that may list keys, such as
// Contributor) and returns the service connection string of keyName, or of
// the first policy with ServiceConfig rights when keyName is "". Call it
// only when the operator asked for shared access keys: it reads a secret.
func (c *Client) ServiceConnectionString(ctx context.Context, d DPS, keyName string) (string, error) {
	dc, err := c.dpsClient(d.SubscriptionID)
	if err != nil {
		return "", err
	}
	var rules []*armdeviceprovisioningservices.SharedAccessSignatureAuthorizationRuleAccessRightsDescription
	pager := dc.NewListKeysPager(d.Name, d.ResourceGroup, nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return "", c.armError("list the shared access keys of DPS "+d.Name, err)
		}
		rules = append(rules, page.Value...)
	}
	var names []string
	for _, r := range rules {
		name := str(r.KeyName)
		names = append(names, name)
		if keyName != "" && !strings.EqualFold(name, keyName) || keyName == "" && !hasServiceConfig(r) || str(r.PrimaryKey) == "" {
			continue
		}
		return fmt.Sprintf("HostName=%s;SharedAccessKeyName=%s;SharedAccessKey=%s", d.ServiceHost, name, str(r.PrimaryKey)), nil
	}
	if keyName != "" {
		return "", fmt.Errorf("DPS %s has no shared access policy %q (it has: %s)", d.Name, keyName, strings.Join(names, ", "))
	}
	return "", fmt.Errorf("DPS %s has no shared access policy with ServiceConfig rights (it has: %s)", d.Name, strings.Join(names, ", "))
}

func hasServiceConfig(r *armdeviceprovisioningservices.SharedAccessSignatureAuthorizationRuleAccessRightsDescription) bool {
	return r.Rights != nil && strings.Contains(string(*r.Rights), string(armdeviceprovisioningservices.AccessRightsDescriptionServiceConfig))
}

func describe(d *armdeviceprovisioningservices.ProvisioningServiceDescription) DPS {
	out := DPS{Name: str(d.Name), ResourceID: str(d.ID), Location: str(d.Location)}
	if id, err := arm.ParseResourceID(out.ResourceID); err == nil {
		out.ResourceGroup, out.SubscriptionID = id.ResourceGroupName, id.SubscriptionID
	}
	if p := d.Properties; p != nil {
		out.IDScope, out.ServiceHost, out.DeviceHost = str(p.IDScope), str(p.ServiceOperationsHostName), str(p.DeviceProvisioningHostName)
		out.AllocationPolicy, out.State = str((*string)(p.AllocationPolicy)), str((*string)(p.State))
		for _, h := range p.IotHubs {
			if h == nil {
				continue
			}
			out.Hubs = append(out.Hubs, LinkedHub{Host: str(h.Name), Location: str(h.Location), AllocationWeight: h.AllocationWeight,
				ApplyAllocationPolicy: h.ApplyAllocationPolicy != nil && *h.ApplyAllocationPolicy})
		}
	}
	return out
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func statusOf(err error) int {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// armError words an ARM failure: what was being done, ARM's code and
// message (AuthorizationFailed names the action and scope itself).
func (c *Client) armError(what string, err error) error {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return fmt.Errorf("%s: %w", what, err)
	}
	msg := fmt.Sprintf("%s: Azure Resource Manager answered %d %s", what, re.StatusCode, http.StatusText(re.StatusCode))
	switch code, text := armErrorBody(re); {
	case code != "" && text != "":
		msg += ": " + code + ": " + text
	case code != "" || text != "":
		msg += ": " + code + text
	}
	switch re.StatusCode {
	case http.StatusUnauthorized:
		msg += "; sign in again (az login), or check " + c.tenant
	case http.StatusForbidden:
		msg += "; the signed-in identity needs a role on that scope (Reader lists; listing keys needs Contributor or another role with Microsoft.Devices/provisioningServices/listkeys/action)"
	}
	return &Error{msg: msg, err: re}
}

// Error is an ARM failure worded for a person; it wraps the
// *azcore.ResponseError.
type Error struct {
	msg string
	err *azcore.ResponseError
}

func (e *Error) Error() string { return e.msg }
func (e *Error) Unwrap() error { return e.err }

// armErrorBody reads ARM's {"error":{"code","message"}}.
func armErrorBody(re *azcore.ResponseError) (code, message string) {
	code = re.ErrorCode
	if re.RawResponse == nil {
		return code, ""
	}
	body, err := runtime.Payload(re.RawResponse)
	if err != nil {
		return code, ""
	}
	var b struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if json.Unmarshal(body, &b) != nil {
		return code, ""
	}
	if b.Error.Code != "" {
		code = b.Error.Code
	}
	return code, b.Error.Message
}
