// Stage: names. Distinguished names encoded the way openssl (and so ovs-pki)
// encodes them: countryName as PrintableString, every other attribute as
// UTF8String. The string type matters: openssl ca's "organizationName =
// match" policy compares type and bytes, so a PrintableString "Open vSwitch"
// does not match ovs-pki's UTF8String one.

package pki

import (
	"bytes"
	"encoding/asn1"
	"fmt"
	"strings"
)

// Attribute type OIDs used in ovs-pki subjects.
var (
	oidCountry  = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidState    = asn1.ObjectIdentifier{2, 5, 4, 8}
	oidLocality = asn1.ObjectIdentifier{2, 5, 4, 7}
	oidOrg      = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidOrgUnit  = asn1.ObjectIdentifier{2, 5, 4, 11}
	oidCN       = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidEmail    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
)

// shortNames are openssl's short names for the oneline (index.txt) format.
var shortNames = []struct {
	oid  asn1.ObjectIdentifier
	name string
}{
	{oidCountry, "C"}, {oidState, "ST"}, {oidLocality, "L"}, {oidOrg, "O"},
	{oidOrgUnit, "OU"}, {oidCN, "CN"}, {oidEmail, "emailAddress"},
}

// OVSOrganization is the O of every ovs-pki subject; ovs-pki's CA policy
// only signs requests carrying it.
const OVSOrganization = "Open vSwitch"

// ovsCertifierOU is the OU ovs-pki puts in requests.
const ovsCertifierOU = "Open vSwitch certifier"

type attr struct {
	oid   asn1.ObjectIdentifier
	value string
}

// rawATV keeps an attribute value with its original string type.
type rawATV struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

// rawRDNSET is one relative distinguished name (a SET OF attributes).
type rawRDNSET []rawATV

// rawDN is a distinguished name that keeps the value encodings.
type rawDN []rawRDNSET

// encodeName builds a DER Name, one attribute per RDN, with openssl's
// string types.
func encodeName(attrs []attr) ([]byte, error) {
	var dn rawDN
	for _, a := range attrs {
		tag := asn1.TagUTF8String
		if a.oid.Equal(oidCountry) {
			tag = asn1.TagPrintableString
		}
		dn = append(dn, rawRDNSET{{Type: a.oid, Value: asn1.RawValue{Class: asn1.ClassUniversal, Tag: tag, Bytes: []byte(a.value)}}})
	}
	b, err := asn1.Marshal(dn)
	if err != nil {
		return nil, fmt.Errorf("encode subject name: %w", err)
	}
	return b, nil
}

// parseName decodes a DER Name keeping value encodings.
func parseName(der []byte) (rawDN, error) {
	var dn rawDN
	rest, err := asn1.Unmarshal(der, &dn)
	if err != nil {
		return nil, fmt.Errorf("parse subject name: %w", err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("parse subject name: trailing data")
	}
	return dn, nil
}

// reqSubjectAttrs is the subject ovs-pki req puts in a request for cn.
func reqSubjectAttrs(cn string) []attr {
	return []attr{
		{oidCountry, "US"}, {oidState, "CA"}, {oidLocality, "Palo Alto"},
		{oidOrg, OVSOrganization}, {oidOrgUnit, ovsCertifierOU}, {oidCN, cn},
	}
}

// caReqSubjectAttrs is the subject of ovs-pki's CA request (careq.pem).
func caReqSubjectAttrs(ca, date string) []attr {
	return []attr{
		{oidCountry, "US"}, {oidState, "CA"}, {oidLocality, "Palo Alto"},
		{oidOrg, OVSOrganization}, {oidOrgUnit, ca},
		{oidCN, "OVS " + ca + " CA Certificate (" + date + ")"},
	}
}

// policyField is one line of ovs-pki's ca.cnf [policy] section, in order.
type policyField struct {
	oid  asn1.ObjectIdentifier
	name string
	rule string // "optional", "match" or "supplied"
}

// ovsPolicy is ovs-pki's signing policy. Fields not listed (such as L) are
// dropped from issued subjects, as openssl ca does; emailAddress is dropped
// too because of email_in_dn = no.
var ovsPolicy = []policyField{
	{oidCountry, "countryName", "optional"},
	{oidState, "stateOrProvinceName", "optional"},
	{oidOrg, "organizationName", "match"},
	{oidOrgUnit, "organizationalUnitName", "optional"},
	{oidCN, "commonName", "supplied"},
}

// applyPolicy builds the subject of an issued certificate from a request's
// subject following ovs-pki's policy against the CA's subject, exactly as
// openssl ca would (order of the policy, string types preserved).
func applyPolicy(reqSubject, caSubject []byte) ([]byte, error) {
	req, err := parseName(reqSubject)
	if err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	ca, err := parseName(caSubject)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	var out rawDN
	for _, f := range ovsPolicy {
		vals := req.values(f.oid)
		switch f.rule {
		case "supplied":
			if len(vals) == 0 || len(vals[0].Bytes) == 0 {
				return nil, fmt.Errorf("the request has no %s (CN); make the request with ovnsec pki req NAME", f.name)
			}
			if len(vals) > 1 {
				// Which CN is the identity would depend on the reader.
				return nil, fmt.Errorf("the request has %d %s (CN) attributes; a chassis certificate names one chassis: make the request with ovnsec pki req NAME", len(vals), f.name)
			}
		case "match":
			want := ca.values(f.oid)
			if len(vals) == 0 {
				return nil, fmt.Errorf("the request has no %s; this CA only signs requests with O=%s (ovs-pki policy organizationName = match): make the request with ovnsec pki req or ovs-pki req", f.name, valueString(want))
			}
			if len(want) == 0 {
				return nil, fmt.Errorf("the CA certificate has no %s to match the request against; re-create the CA with ovnsec pki init", f.name)
			}
			if !sameValue(vals[0], want[0]) {
				if bytes.Equal(vals[0].Bytes, want[0].Bytes) {
					return nil, fmt.Errorf("the request's %s %q is encoded as ASN.1 tag %d but the CA's as tag %d; openssl ca would refuse it too: make the request with ovnsec pki req or ovs-pki req", f.name, vals[0].Bytes, vals[0].Tag, want[0].Tag)
				}
				return nil, fmt.Errorf("the request's %s is %q but this CA only signs requests with O=%q (ovs-pki policy organizationName = match): make the request with ovnsec pki req or ovs-pki req", f.name, vals[0].Bytes, want[0].Bytes)
			}
		}
		for _, v := range vals {
			out = append(out, rawRDNSET{{Type: f.oid, Value: v}})
		}
	}
	b, err := asn1.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encode subject name: %w", err)
	}
	return b, nil
}

// values returns the raw values of every attribute of type oid, in order.
func (dn rawDN) values(oid asn1.ObjectIdentifier) []asn1.RawValue {
	var vs []asn1.RawValue
	for _, rdn := range dn {
		for _, a := range rdn {
			if a.Type.Equal(oid) {
				vs = append(vs, a.Value)
			}
		}
	}
	return vs
}

func sameValue(a, b asn1.RawValue) bool {
	return a.Class == b.Class && a.Tag == b.Tag && bytes.Equal(a.Bytes, b.Bytes)
}

func valueString(vs []asn1.RawValue) string {
	if len(vs) == 0 {
		return "(none)"
	}
	return string(vs[0].Bytes)
}

// onelineName formats a DER name like openssl's X509_NAME_oneline, the
// format of index.txt: "/C=US/ST=CA/O=Open vSwitch/CN=host1".
func onelineName(der []byte) (string, error) {
	dn, err := parseName(der)
	if err != nil {
		return "", err
	}
	var sb strings.Builder
	for _, rdn := range dn {
		for i, a := range rdn {
			if i == 0 {
				sb.WriteByte('/')
			} else {
				sb.WriteByte('+')
			}
			sb.WriteString(shortName(a.Type))
			sb.WriteByte('=')
			for _, c := range a.Value.Bytes {
				if c < ' ' || c > '~' {
					fmt.Fprintf(&sb, "\\x%02X", c)
				} else {
					sb.WriteByte(c)
				}
			}
		}
	}
	return sb.String(), nil
}

func shortName(oid asn1.ObjectIdentifier) string {
	for _, s := range shortNames {
		if s.oid.Equal(oid) {
			return s.name
		}
	}
	return oid.String()
}
