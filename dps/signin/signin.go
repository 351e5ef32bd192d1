// Package signin signs in to Microsoft Entra ID the way the Azure SDKs do:
// azidentity's default chain (environment, workload identity, managed
// identity, Azure CLI, Azure Developer CLI; AZURE_TOKEN_CREDENTIALS picks a
// subset), with device-code sign-in as the interactive fallback. A private
// cloud such as the dpsconsole emulator is reached through azcore's own
// cloud.Configuration, so the code path is the one of real Azure.
package signin

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// Environment variables of a private cloud. azidentity reads
// AZURE_AUTHORITY_HOST itself; the ARM endpoint is the emulator's addition
// (its emulator.env sets both).
const (
	EnvAuthorityHost = "AZURE_AUTHORITY_HOST"
	EnvARMEndpoint   = "AZURE_RESOURCE_MANAGER_ENDPOINT"
)

// armAudience is the audience of ARM tokens in Azure's public cloud; the
// emulator mints tokens for it too.
const armAudience = "https://management.core.windows.net/"

// DeviceCodePrompt is what a person needs to finish device-code sign-in:
// the page to open and the code to enter there, and Entra's own sentence
// saying both.
type DeviceCodePrompt = azidentity.DeviceCodeMessage

// Options configure NewCredential. The zero value signs in to Azure's
// public cloud with the default chain and no interactive fallback.
type Options struct {
	// TenantID narrows sign-in to one tenant (--tenant): the Azure CLI, the
	// Azure Developer CLI, workload identity and device code sign in there,
	// and an environment credential for another tenant is refused.
	TenantID string

	// TenantSource names where TenantID came from in messages; "" is
	// "--tenant". A tenant remembered from an earlier run says so.
	TenantSource string

	// Cloud is where to sign in and where ARM is; the zero value is
	// CloudFromEnv().
	Cloud cloud.Configuration

	// Transport sends the credentials' requests, e.g. an *http.Client that
	// trusts the emulator's CA; nil is azcore's default.
	Transport policy.Transporter

	// DeviceCode, when set, makes device-code sign-in the fallback when the
	// default chain finds no identity. It is called with the prompt (the CLI
	// prints it to stderr, the console shows it) and sign-in waits until the
	// person has entered the code or ctx ends; an error from it stops sign-in.
	DeviceCode func(context.Context, DeviceCodePrompt) error

	// DeviceCodeOnly skips the default chain and signs in with a device code
	// alone (it needs DeviceCode), e.g. on a machine without az.
	DeviceCodeOnly bool
}

// NewCredential returns the credential of opts: azidentity's
// DefaultAzureCredential, then (with opts.DeviceCode) a DeviceCodeCredential;
// or the latter alone with opts.DeviceCodeOnly.
// It asks for no token yet: the first request does.
func NewCredential(opts Options) (azcore.TokenCredential, error) {
	c := opts.Cloud
	if c.ActiveDirectoryAuthorityHost == "" {
		c = CloudFromEnv()
	}
	if err := checkTenant(opts.TenantID, opts.TenantSource); err != nil {
		return nil, err
	}
	if opts.DeviceCodeOnly && opts.DeviceCode == nil {
		return nil, errors.New("sign-in: a device-code sign-in needs a way to show its prompt (Options.DeviceCode)")
	}
	co := azcore.ClientOptions{Cloud: c, Transport: opts.Transport}
	private := IsPrivate(c)
	var chain []azcore.TokenCredential
	if !opts.DeviceCodeOnly {
		dac, err := azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{
			ClientOptions:            co,
			TenantID:                 opts.TenantID,
			DisableInstanceDiscovery: private,
		})
		if err != nil {
			return nil, fmt.Errorf("sign-in: %w", err)
		}
		chain = append(chain, dac)
	}
	if opts.DeviceCode != nil {
		dc, err := azidentity.NewDeviceCodeCredential(&azidentity.DeviceCodeCredentialOptions{
			ClientOptions:            co,
			TenantID:                 opts.TenantID,
			DisableInstanceDiscovery: private,
			UserPrompt:               opts.DeviceCode,
		})
		if err != nil {
			return nil, fmt.Errorf("sign-in: %w", err)
		}
		chain = append(chain, dc)
	}
	cred, err := azidentity.NewChainedTokenCredential(chain, nil)
	if err != nil {
		return nil, fmt.Errorf("sign-in: %w", err)
	}
	return &sharedTokens{next: cred, tokens: map[string]azcore.AccessToken{}}, nil
}

// sharedTokens hands every client the same token per scope: the Azure CLI
// and Azure Developer CLI credentials cache nothing and start a process (a
// second or so) per token, and each ARM client asks for its own.
type sharedTokens struct {
	next   azcore.TokenCredential
	mu     sync.Mutex
	tokens map[string]azcore.AccessToken
}

func (s *sharedTokens) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if o.Claims != "" { // a claims challenge needs a new token
		return s.next.GetToken(ctx, o)
	}
	key := o.TenantID + "|" + strings.Join(o.Scopes, " ")
	s.mu.Lock()
	defer s.mu.Unlock() // one sign-in at a time: a device code is not asked for twice
	if tk, ok := s.tokens[key]; ok && time.Until(tk.ExpiresOn) > 5*time.Minute {
		return tk, nil
	}
	tk, err := s.next.GetToken(ctx, o)
	if err == nil {
		s.tokens[key] = tk
	}
	return tk, err
}

// checkTenant refuses --tenant (or the tenant named by source) when the
// environment credential is set up for another tenant: azidentity would
// sign in there regardless.
func checkTenant(tenant, source string) error {
	env := os.Getenv("AZURE_TENANT_ID")
	if tenant == "" || env == "" || strings.EqualFold(tenant, env) || os.Getenv("AZURE_CLIENT_ID") == "" {
		return nil
	}
	if source == "" {
		return fmt.Errorf("--tenant is %s but $AZURE_TENANT_ID (the environment credential's tenant) is %s: unset one, or make them the same", tenant, env)
	}
	return fmt.Errorf("%s is %s but $AZURE_TENANT_ID (the environment credential's tenant) is %s: give --tenant %s, or unset $AZURE_TENANT_ID", source, tenant, env, env)
}

// CloudFromEnv is Azure's public cloud unless $AZURE_RESOURCE_MANAGER_ENDPOINT
// names a private one (with its authority in $AZURE_AUTHORITY_HOST, else the
// public one's).
func CloudFromEnv() cloud.Configuration {
	arm := os.Getenv(EnvARMEndpoint)
	if arm == "" {
		host := os.Getenv(EnvAuthorityHost)
		for _, known := range knownClouds {
			if host == "" || sameHost(host, known.ActiveDirectoryAuthorityHost) {
				return known // a sovereign cloud's authority comes with its own ARM
			}
		}
		c := cloud.AzurePublic
		c.ActiveDirectoryAuthorityHost = host
		return c
	}
	authority := os.Getenv(EnvAuthorityHost)
	if authority == "" {
		authority = cloud.AzurePublic.ActiveDirectoryAuthorityHost
	}
	return Private(authority, arm)
}

// Private is the cloud configuration of an authority and an ARM endpoint of
// one's own, such as the emulator's (the AZURE_AUTHORITY_HOST and
// AZURE_RESOURCE_MANAGER_ENDPOINT of its emulator.env).
func Private(authorityHost, armEndpoint string) cloud.Configuration {
	return cloud.Configuration{
		ActiveDirectoryAuthorityHost: authorityHost,
		Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
			cloud.ResourceManager: {Audience: armAudience, Endpoint: armEndpoint},
		},
	}
}

// IsPrivate reports whether c's authority is none of Azure's public and
// sovereign clouds: MSAL's instance discovery, which asks
// login.microsoftonline.com about the authority, must then be off.
func IsPrivate(c cloud.Configuration) bool {
	for _, known := range knownClouds {
		if sameHost(c.ActiveDirectoryAuthorityHost, known.ActiveDirectoryAuthorityHost) {
			return false
		}
	}
	return true
}

// knownClouds are Azure's public cloud (first) and its sovereign clouds.
var knownClouds = []cloud.Configuration{cloud.AzurePublic, cloud.AzureChina, cloud.AzureGovernment}

func sameHost(a, b string) bool {
	return strings.EqualFold(strings.TrimSuffix(a, "/"), strings.TrimSuffix(b, "/"))
}

// Identity is who a token says signed in, for headers and messages. It is
// read from the token's claims without checking the signature: the service
// that accepts the token does that.
type Identity struct {
	TenantID string `json:"tenantId"`
	ObjectID string `json:"objectId,omitempty"`
	AppID    string `json:"appId,omitempty"` // a service principal's client ID
	Name     string `json:"name,omitempty"`  // a user's sign-in name, else the app ID
}

// String is the name, or the object ID, with the tenant.
func (id Identity) String() string {
	who := id.Name
	if who == "" {
		who = id.ObjectID
	}
	return who + " (tenant " + id.TenantID + ")"
}

// WhoAmI asks cred for a token for scope and says whose it is.
func WhoAmI(ctx context.Context, cred azcore.TokenCredential, scope string) (Identity, error) {
	tk, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}})
	if err != nil {
		return Identity{}, err
	}
	return IdentityOf(tk.Token)
}

// IdentityOf reads the identity claims of a JWT access token. Its errors
// never repeat the token.
func IdentityOf(token string) (Identity, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return Identity{}, errors.New("the access token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return Identity{}, errors.New("the access token's claims are not base64url")
	}
	var c struct {
		Tid, Oid, Appid, Azp, Upn, Name string
		PreferredUsername               string `json:"preferred_username"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return Identity{}, errors.New("the access token's claims are not JSON")
	}
	id := Identity{TenantID: c.Tid, ObjectID: c.Oid, AppID: firstOf(c.Appid, c.Azp)}
	id.Name = firstOf(c.Upn, c.PreferredUsername, id.AppID)
	return id, nil
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// ErrorMessage words a failed sign-in in one line when Entra ID answered
// (its AADSTS description, which names the cause), and leaves azidentity's
// list of the credentials it tried otherwise: that list is what says why
// none of them had an identity. It never contains a secret or a token:
// Entra's answers carry neither.
func ErrorMessage(err error) string {
	var afe *azidentity.AuthenticationFailedError
	if !errors.As(err, &afe) || afe.RawResponse == nil {
		return err.Error()
	}
	body, rerr := runtime.Payload(afe.RawResponse) // buffered: azidentity's Error() can still read it
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if rerr != nil || json.Unmarshal(body, &e) != nil || e.Description == "" {
		return err.Error()
	}
	return fmt.Sprintf("Microsoft Entra ID refused the sign-in (%d %s): %s", afe.RawResponse.StatusCode, e.Error, e.Description)
}

// explained is a failed sign-in worded with the way out; it unwraps to the
// failure itself.
type explained struct {
	text string
	err  error
}

func (e *explained) Error() string { return e.text }
func (e *explained) Unwrap() error { return e.err }

// Explain words a failed sign-in with the way out (sign in with az login, or
// the environment; past a failing managed identity, how to skip it), for the
// CLI and the console's target picker alike. Other errors, and one already
// explained, pass unchanged.
func Explain(err error) error {
	var afe *azidentity.AuthenticationFailedError
	var done *explained
	// Without one, the chain's own message lists what it tried and why.
	if err == nil || errors.As(err, &done) || !errors.As(err, &afe) && !strings.Contains(err.Error(), "ChainedTokenCredential") {
		return err
	}
	text := "sign-in to Microsoft Entra ID failed: " + ErrorMessage(err) +
		"\nSign in with az login (or set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET, or use --auth device-code), then try again"
	if strings.Contains(err.Error(), "ManagedIdentityCredential authentication failed") {
		// The chain stops at a failing managed identity, before az and azd.
		text += ".\nAlready signed in with az login? A managed identity endpoint answered first with an error (an HTTP proxy answering for 169.254.169.254 does that): " +
			"set AZURE_TOKEN_CREDENTIALS=dev to sign in with az or azd only, or add 169.254.169.254 to $NO_PROXY"
	}
	return &explained{text: text, err: err}
}
