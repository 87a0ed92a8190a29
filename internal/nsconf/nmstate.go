// NMState stage: a *.yaml or *.yml file read as nmstate documents. A file
// holds one or more YAML documents, each an nmstate state (interfaces: at
// the top) or a NodeNetworkConfigurationPolicy (spec.desiredState.
// interfaces:). Every interface of type ipsec becomes a connection named
// after the interface, with its libreswan: keys; interfaces of other types
// and the other top-level keys are nmstate's and are not looked at.

package nsconf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// yamlLine finds the line in the YAML parser's messages.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

const wantDoc = "want an nmstate state (interfaces: with items of type: ipsec) or a NodeNetworkConfigurationPolicy (spec: desiredState: interfaces:)"

// readNMState reads one YAML file.
func readNMState(path string, data []byte) (secs []section, errs []Error) {
	defer func() {
		// The YAML parser is third-party code: whatever it does on a hostile
		// file must not take ovnsecd down.
		if r := recover(); r != nil {
			secs, errs = nil, []Error{errorf(Source{File: path}, "", "the YAML parser failed (%v); check the file's syntax", r)}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return secs, errs
		}
		if err != nil {
			src, msg := Source{File: path}, err.Error()
			if m := yamlLine.FindStringSubmatch(msg); m != nil {
				src.Line, _ = strconv.Atoi(m[1])
				msg = m[2]
			}
			return secs, append(errs, errorf(src, "", "not valid YAML: %s", msg))
		}
		secs, errs = readNMStateDoc(path, &doc, secs, errs)
	}
}

// mapGet returns the value of key in mapping n (nil when absent).
func mapGet(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// scalar returns n's text, refusing aliases, lists and mappings.
func scalar(n *yaml.Node) (string, error) {
	switch {
	case n.Kind == yaml.AliasNode:
		return "", fmt.Errorf("YAML aliases (*name) are not supported; write the value")
	case n.Kind != yaml.ScalarNode:
		return "", fmt.Errorf("want a single value, not a list or mapping")
	case n.Tag == "!!null":
		return "", fmt.Errorf("no value; write one or remove the key")
	}
	return n.Value, nil
}

func readNMStateDoc(path string, doc *yaml.Node, secs []section, errs []Error) ([]section, []Error) {
	at := func(n *yaml.Node) Source { return Source{File: path, Line: n.Line} }
	root := doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return secs, errs
		}
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return secs, errs // an empty document
	}
	ifaces := mapGet(root, "interfaces")
	if ifaces == nil {
		ifaces = mapGet(mapGet(mapGet(root, "spec"), "desiredState"), "interfaces")
	}
	if ifaces == nil {
		return secs, append(errs, errorf(at(root), "", "no interfaces: list; %s", wantDoc))
	}
	if ifaces.Kind != yaml.SequenceNode {
		return secs, append(errs, errorf(at(ifaces), "", "interfaces: want a list; %s", wantDoc))
	}
	for _, it := range ifaces.Content {
		if it.Kind != yaml.MappingNode {
			errs = append(errs, errorf(at(it), "", "an interface must be a mapping (name:, type:, ...)"))
			continue
		}
		if t := mapGet(it, "type"); t == nil || t.Kind != yaml.ScalarNode || t.Value != "ipsec" {
			continue
		}
		nameNode := mapGet(it, "name")
		if nameNode == nil {
			errs = append(errs, errorf(at(it), "", "an interface of type ipsec needs name: (the connection's name)"))
			continue
		}
		name, err := scalar(nameNode)
		if err == nil {
			err = checkName(name)
		}
		if err != nil {
			errs = append(errs, errorf(at(nameNode), "", "name: %v", err))
			continue
		}
		secs = append(secs, readIPsecInterface(path, name, nameNode, it))
	}
	return secs, errs
}

// readIPsecInterface reads one interface of type ipsec.
func readIPsecInterface(path, name string, nameNode, it *yaml.Node) section {
	at := func(n *yaml.Node) Source { return Source{File: path, Line: n.Line} }
	sec := section{form: formYAML, name: name, src: at(nameNode)}
	fail := func(n *yaml.Node, format string, args ...any) {
		sec.errs = append(sec.errs, errorf(at(n), name, format, args...))
	}
	var lib *yaml.Node
	for i := 0; i+1 < len(it.Content); i += 2 {
		k, v := it.Content[i], it.Content[i+1]
		switch k.Value {
		case "name", "type", "description":
		case "state":
			switch s, err := scalar(v); {
			case err != nil:
				fail(v, "state: %v", err)
			case s == "absent" || s == "down":
				sec.down = true
			case s != "up":
				fail(v, "state: %q: want up, down or absent", s)
			}
		case "ipv4", "ipv6":
			// Addresses from the gateway (mode config) are not supported;
			// "enabled: false" says as much and is accepted.
			if e := mapGet(v, "enabled"); e == nil || e.Kind != yaml.ScalarNode || e.Value != "false" {
				fail(k, "%s: an address from the gateway (mode config) is not supported; remove it or write %s: {enabled: false}", k.Value, k.Value)
			}
		case "libreswan":
			lib = v
		default:
			fail(k, "interface key %q is not used for an ipsec interface; remove it", k.Value)
		}
	}
	if lib == nil {
		if !sec.down {
			fail(nameNode, "an interface of type ipsec needs a libreswan: mapping")
		}
		return sec
	}
	if lib.Kind != yaml.MappingNode {
		fail(lib, "libreswan: want a mapping of libreswan keys")
		return sec
	}
	for i := 0; i+1 < len(lib.Content); i += 2 {
		k, v := lib.Content[i], lib.Content[i+1]
		key, err := scalar(k)
		if err == nil {
			err = checkKey(key)
		}
		if err != nil {
			fail(k, "libreswan key: %v", err)
			continue
		}
		val, err := scalar(v)
		if err != nil {
			fail(v, "%s: %v", key, err)
			continue
		}
		sec.kvs = append(sec.kvs, kv{key: key, val: val, src: at(k)})
	}
	return sec
}
