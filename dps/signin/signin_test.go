package signin

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
)

func TestCloudFromEnv(t *testing.T) {
	t.Setenv(EnvAuthorityHost, "")
	t.Setenv(EnvARMEndpoint, "")
	if c := CloudFromEnv(); c.ActiveDirectoryAuthorityHost != cloud.AzurePublic.ActiveDirectoryAuthorityHost || IsPrivate(c) {
		t.Errorf("no variables: %+v, want the public cloud", c)
	}
	t.Setenv(EnvAuthorityHost, "https://login.chinacloudapi.cn")
	if c := CloudFromEnv(); c.ActiveDirectoryAuthorityHost != cloud.AzureChina.ActiveDirectoryAuthorityHost || IsPrivate(c) {
		t.Errorf("Azure China's authority: %+v, want Azure China", c)
	}
	t.Setenv(EnvAuthorityHost, "https://localhost:4443/")
	t.Setenv(EnvARMEndpoint, "https://localhost:4443/")
	c := CloudFromEnv()
	if c.ActiveDirectoryAuthorityHost != "https://localhost:4443/" || !IsPrivate(c) {
		t.Errorf("emulator: %+v, want a private cloud on localhost", c)
	}
	if rm := c.Services[cloud.ResourceManager]; rm.Endpoint != "https://localhost:4443/" || rm.Audience != "https://management.core.windows.net/" {
		t.Errorf("resource manager %+v", rm)
	}
	if IsPrivate(cloud.Configuration{ActiveDirectoryAuthorityHost: "https://login.microsoftonline.us"}) {
		t.Error("Azure Government counted as private")
	}
}

func TestTenantMustMatchTheEnvironmentCredential(t *testing.T) {
	t.Setenv("AZURE_TENANT_ID", "tenant-a")
	t.Setenv("AZURE_CLIENT_ID", "app")
	if _, err := NewCredential(Options{TenantID: "tenant-b"}); err == nil || !strings.Contains(err.Error(), "tenant-a") {
		t.Errorf("got %v, want a refusal naming $AZURE_TENANT_ID", err)
	}
	if _, err := NewCredential(Options{TenantID: "TENANT-A"}); err != nil {
		t.Errorf("the same tenant refused: %v", err)
	}
}

func TestAZURETOKENCREDENTIALSIsHonoured(t *testing.T) {
	t.Setenv("AZURE_TOKEN_CREDENTIALS", "NoSuchCredential")
	if _, err := NewCredential(Options{}); err == nil || !strings.Contains(err.Error(), "AZURE_TOKEN_CREDENTIALS") {
		t.Errorf("got %v, want azidentity's refusal of the value", err)
	}
}

func TestIdentityOf(t *testing.T) {
	claims := base64.RawURLEncoding.EncodeToString([]byte(`{"tid":"t1","oid":"o1","appid":"a1","aud":"x"}`))
	id, err := IdentityOf("e30." + claims + ".sig")
	if err != nil {
		t.Fatal(err)
	}
	if id != (Identity{TenantID: "t1", ObjectID: "o1", AppID: "a1", Name: "a1"}) || id.String() != "a1 (tenant t1)" {
		t.Errorf("got %+v %q", id, id)
	}
	for _, bad := range []string{"opaque-token-value", "a.!!!.c", "a." + base64.RawURLEncoding.EncodeToString([]byte("nope")) + ".c"} {
		if _, err := IdentityOf(bad); err == nil || strings.Contains(err.Error(), bad) {
			t.Errorf("IdentityOf(%q): %v", bad, err)
		}
	}
}

func TestDeviceCodeOnlyNeedsAPrompt(t *testing.T) {
	if _, err := NewCredential(Options{DeviceCodeOnly: true}); err == nil || !strings.Contains(err.Error(), "prompt") {
		t.Errorf("got %v, want a refusal: nobody would see the code", err)
	}
}
