package natlab

import (
	"context"
	"fmt"
	"regexp"
)

// RFC4787 returns the mapping and filtering behaviour the router shows to
// RFC 5780 discovery: "EIM", "ADM" or "APDM" and "EIF", "ADF" or "APDF".
// Port allocation does not change the mapping's class; a router without
// NAT maps every endpoint to itself, endpoint-independently.
func (n NAT) RFC4787() (mapping, filtering string) {
	switch n.Mapping {
	case MapADM:
		mapping = "ADM"
	case MapAPDM, MapAPDMSequential:
		mapping = "APDM"
	default:
		mapping = "EIM"
	}
	return mapping, n.Filtering.String()
}

var natdiscoveryVerdict = regexp.MustCompile(`NAT with (Endpoint Independent|Address Dependent|Address and Port Dependent) (Mapping|Filtering)!`)

// NatDiscovery runs coturn's turnutils_natdiscovery from namespace ns
// against the lab's STUN server and returns its mapping and filtering
// verdicts in RFC 4787 terms, the third-party reference for our own
// classification.
//
// turnutils_natdiscovery gives up after one unanswered request; in the
// lab's hashed NATs a rare port collision drops one, so a run that ends
// without a verdict is repeated (up to natDiscoveryRuns times).
func (l *Lab) NatDiscovery(ctx context.Context, ns string) (mapping, filtering string, err error) {
	for range natDiscoveryRuns {
		var out []byte
		out, err = l.Exec(ctx, ns, "turnutils_natdiscovery", "-m", "-f", ServerIP1.String())
		if err != nil {
			return "", "", err
		}
		if mapping, filtering, err = ParseNatDiscovery(out); err == nil {
			return mapping, filtering, nil
		}
	}
	return mapping, filtering, err
}

const natDiscoveryRuns = 3

// ParseNatDiscovery reads turnutils_natdiscovery's verdicts.
func ParseNatDiscovery(out []byte) (mapping, filtering string, err error) {
	abbrev := map[string]string{"Endpoint Independent": "EI", "Address Dependent": "AD", "Address and Port Dependent": "APD"}
	for _, m := range natdiscoveryVerdict.FindAllSubmatch(out, -1) {
		v := abbrev[string(m[1])]
		if string(m[2]) == "Mapping" {
			mapping = v + "M"
		} else {
			filtering = v + "F"
		}
	}
	if mapping == "" || filtering == "" {
		return mapping, filtering, fmt.Errorf("turnutils_natdiscovery gave no verdict:\n%s", out)
	}
	return mapping, filtering, nil
}
