package daemon

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/netext/netext/apitype"
	"github.com/netext/netext/internal/providerproto"
	"github.com/netext/netext/registry"
	"github.com/netext/netext/store"
)

// toStore converts a configuration of the API to the store's, which
// checks it.
func toStore(c apitype.Configuration) (store.Configuration, error) {
	out := store.Configuration{
		Name:                 c.Name,
		Description:          c.Description,
		ProviderID:           c.ProviderID,
		ServerAddress:        c.ServerAddress,
		Username:             c.Username,
		Enabled:              c.Enabled,
		OnDemand:             store.OnDemand{Enabled: c.OnDemand.Enabled},
		IncludeAllNetworks:   c.IncludeAllNetworks,
		ExcludeLocalNetworks: c.ExcludeLocalNetworks,
		EnforceRoutes:        c.EnforceRoutes,
		StrictDNS:            c.StrictDNS,
		DisconnectOnSleep:    c.DisconnectOnSleep,
		RoutingMethod:        store.RoutingMethod(c.RoutingMethod),
		Generation:           c.Generation,
	}
	if len(c.ProviderConfiguration) > 0 {
		out.ProviderConfiguration = append(json.RawMessage(nil), c.ProviderConfiguration...)
	}
	for _, r := range c.OnDemand.Rules {
		sr := store.OnDemandRule{
			Action:                store.OnDemandAction(r.Action),
			InterfaceTypeMatch:    store.InterfaceType(r.InterfaceTypeMatch),
			SSIDMatch:             r.SSIDMatch,
			DNSSearchDomainMatch:  r.DNSSearchDomainMatch,
			DNSServerAddressMatch: r.DNSServerAddressMatch,
			ProbeURL:              r.ProbeURL,
		}
		for _, cr := range r.ConnectionRules {
			sr.ConnectionRules = append(sr.ConnectionRules, store.ConnectionRule{
				Domains:            cr.Domains,
				Action:             store.ConnectionAction(cr.Action),
				RequiredDNSServers: cr.RequiredDNSServers,
				ProbeURL:           cr.ProbeURL,
			})
		}
		out.OnDemand.Rules = append(out.OnDemand.Rules, sr)
	}
	for _, r := range c.AppRules {
		out.AppRules = append(out.AppRules, store.AppRule{
			ExecutablePath: r.ExecutablePath,
			User:           r.User,
			SystemdUnit:    r.SystemdUnit,
			CgroupPath:     r.CgroupPath,
			MatchDomains:   r.MatchDomains,
		})
	}
	return out, nil
}

// fromStore converts a configuration of the store to the API's.
func fromStore(c store.Configuration) apitype.Configuration {
	out := apitype.Configuration{
		Name:                 c.Name,
		Description:          c.Description,
		ProviderID:           c.ProviderID,
		ServerAddress:        c.ServerAddress,
		Username:             c.Username,
		Enabled:              c.Enabled,
		OnDemand:             apitype.OnDemand{Enabled: c.OnDemand.Enabled},
		IncludeAllNetworks:   c.IncludeAllNetworks,
		ExcludeLocalNetworks: c.ExcludeLocalNetworks,
		EnforceRoutes:        c.EnforceRoutes,
		StrictDNS:            c.StrictDNS,
		DisconnectOnSleep:    c.DisconnectOnSleep,
		RoutingMethod:        string(c.RoutingMethod),
		Generation:           c.Generation,
		HasSecret:            c.HasSecret,
		CreatedAt:            c.CreatedAt,
		ModifiedAt:           c.ModifiedAt,
	}
	if len(c.ProviderConfiguration) > 0 {
		out.ProviderConfiguration = append(json.RawMessage(nil), c.ProviderConfiguration...)
	}
	for _, r := range c.OnDemand.Rules {
		ar := apitype.OnDemandRule{
			Action:                string(r.Action),
			InterfaceTypeMatch:    string(r.InterfaceTypeMatch),
			SSIDMatch:             r.SSIDMatch,
			DNSSearchDomainMatch:  r.DNSSearchDomainMatch,
			DNSServerAddressMatch: r.DNSServerAddressMatch,
			ProbeURL:              r.ProbeURL,
		}
		for _, cr := range r.ConnectionRules {
			ar.ConnectionRules = append(ar.ConnectionRules, apitype.ConnectionRule{
				Domains:            cr.Domains,
				Action:             string(cr.Action),
				RequiredDNSServers: cr.RequiredDNSServers,
				ProbeURL:           cr.ProbeURL,
			})
		}
		out.OnDemand.Rules = append(out.OnDemand.Rules, ar)
	}
	for _, r := range c.AppRules {
		out.AppRules = append(out.AppRules, apitype.AppRule{
			ExecutablePath: r.ExecutablePath,
			User:           r.User,
			SystemdUnit:    r.SystemdUnit,
			CgroupPath:     r.CgroupPath,
			MatchDomains:   r.MatchDomains,
		})
	}
	return out
}

// providerInfo converts a registry provider to the API's.
func providerInfo(p registry.Provider) apitype.ProviderInfo {
	return apitype.ProviderInfo{ID: p.ID, Description: p.Description, Executable: p.Executable, User: p.User, Kind: string(p.Kind)}
}

// providerConfiguration is what the provider gets with start.
func providerConfiguration(c store.Configuration, secret store.Secret) providerproto.Configuration {
	name := c.Description
	if name == "" {
		name = c.Name
	}
	return providerproto.Configuration{
		ID:                    c.Name,
		Name:                  name,
		ProviderConfiguration: c.ProviderConfiguration,
		ServerAddress:         c.ServerAddress,
		Username:              c.Username,
		Secret:                providerproto.Secret(secret.Reveal()),
		IncludeAllNetworks:    c.IncludeAllNetworks,
		ExcludeLocalNetworks:  c.ExcludeLocalNetworks,
		EnforceRoutes:         c.EnforceRoutes,
		DisconnectOnSleep:     c.DisconnectOnSleep,
	}
}

// startOptions encodes the options of a start request for the provider.
func startOptions(opts map[string]any) (map[string]json.RawMessage, error) {
	if opts == nil {
		return nil, nil
	}
	out := make(map[string]json.RawMessage, len(opts))
	for k, v := range opts {
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, apitype.Errorf(apitype.CodeInvalid, "options.%s: %v", k, err)
		}
		out[k] = raw
	}
	return out, nil
}

// stopReason checks a stop reason of the API.
func stopReason(reason string) (providerproto.StopReason, error) {
	switch reason {
	case "", apitype.StopReasonUserInitiated:
		return providerproto.StopUserInitiated, nil
	case apitype.StopReasonUserLogout, apitype.StopReasonUserSwitch, apitype.StopReasonIdleTimeout, apitype.StopReasonSuperceded:
		return providerproto.StopReason(reason), nil
	}
	return "", apitype.Errorf(apitype.CodeInvalid, "reason %q: must be one of %s, %s, %s, %s or %s", reason,
		apitype.StopReasonUserInitiated, apitype.StopReasonUserLogout, apitype.StopReasonUserSwitch,
		apitype.StopReasonIdleTimeout, apitype.StopReasonSuperceded)
}

// apiError gives errors of the store and the registry their API codes.
func apiError(err error) error {
	var ae *apitype.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ae):
		return err
	case errors.Is(err, store.ErrNotFound):
		return &apitype.Error{Code: apitype.CodeNotFound, Message: err.Error()}
	case errors.Is(err, store.ErrExists):
		return &apitype.Error{Code: apitype.CodeExists, Message: err.Error()}
	case errors.Is(err, store.ErrStale):
		return &apitype.Error{Code: apitype.CodeStale, Message: err.Error()}
	case errors.Is(err, store.ErrInvalid):
		return &apitype.Error{Code: apitype.CodeInvalid, Message: err.Error()}
	case errors.Is(err, registry.ErrUnknownProvider):
		return &apitype.Error{Code: apitype.CodeUnavailable, Message: err.Error()}
	case errors.Is(err, store.ErrClosed):
		return &apitype.Error{Code: apitype.CodeUnavailable, Message: "netextd is shutting down"}
	case errors.Is(err, context.DeadlineExceeded):
		return &apitype.Error{Code: apitype.CodeTimeout, Message: err.Error()}
	}
	return err
}
