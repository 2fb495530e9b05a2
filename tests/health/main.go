// Command health-helper reads Kubernetes objects as JSON and says how the tools GitOps users
// watch them with would see each one: kstatus (the library Flux's health checks use) and
// the Argo CD health check this project ships as a Lua script (one for every kind), run by
// gopher-lua, the Lua engine Argo CD embeds.
//
// Usage: health-helper -script health.lua [FILE...]
//
// Objects come from the files named, or from standard input when none is: one JSON object,
// a JSON array of them, or several one after another. For each object one JSON line is
// printed on standard output, in input order:
//
//	{"kind":..., "name":..., "kstatus":{"status","message"}, "argo":{"status","message"},
//	 "lua":{"status","message"}, "error":...}
//
// "lua" is what the script returns; "argo" is what Argo CD shows, which is the script's
// answer except for an object being deleted, whose health Argo CD reports as Progressing
// without running any script. A script that fails makes the helper exit non-zero after
// printing the other objects' lines.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

// Verdict is one tool's answer for one object.
type Verdict struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

// Result is the helper's line for one object.
type Result struct {
	Kind    string   `json:"kind"`
	Name    string   `json:"name"`
	KStatus *Verdict `json:"kstatus,omitempty"`
	Argo    *Verdict `json:"argo,omitempty"`
	Lua     *Verdict `json:"lua,omitempty"`
	Error   string   `json:"error,omitempty"`
}

func main() {
	scriptPath := flag.String("script", "", "the health script, run for objects of every kind")
	flag.Parse()
	if *scriptPath == "" {
		fmt.Fprintln(os.Stderr, "health-helper: -script FILE is required")
		os.Exit(2)
	}
	script, err := os.ReadFile(*scriptPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "health-helper: %v\n", err)
		os.Exit(2)
	}
	objects, err := readObjects(flag.Args())
	if err != nil {
		fmt.Fprintf(os.Stderr, "health-helper: %v\n", err)
		os.Exit(2)
	}
	out := json.NewEncoder(os.Stdout)
	failed := false
	for _, obj := range objects {
		result := evaluate(obj, string(script))
		if result.Error != "" {
			failed = true
		}
		if err := out.Encode(result); err != nil {
			fmt.Fprintf(os.Stderr, "health-helper: writing a result: %v\n", err)
			os.Exit(2)
		}
	}
	if failed {
		os.Exit(1)
	}
}

// readObjects decodes every object of the named files, or of standard input without any.
func readObjects(files []string) ([]*unstructured.Unstructured, error) {
	var inputs [][]byte
	if len(files) == 0 {
		data, err := io.ReadAll(os.Stdin)
		if err != nil {
			return nil, fmt.Errorf("reading standard input: %w", err)
		}
		inputs = append(inputs, data)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		inputs = append(inputs, data)
	}
	var objects []*unstructured.Unstructured
	for _, data := range inputs {
		decoded, err := decodeAll(data)
		if err != nil {
			return nil, err
		}
		objects = append(objects, decoded...)
	}
	return objects, nil
}

// decodeAll reads JSON values one after another; an array stands for its elements. Each
// object is decoded the way client-go decodes an object it fetched (integers as int64), so
// kstatus and the Lua conversion see the same Go values they see in Flux and Argo CD.
func decodeAll(data []byte) ([]*unstructured.Unstructured, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var objects []*unstructured.Unstructured
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
			return objects, nil
		} else if err != nil {
			return nil, fmt.Errorf("not JSON: %w", err)
		}
		trimmed := bytes.TrimSpace(raw)
		items := []json.RawMessage{raw}
		if len(trimmed) > 0 && trimmed[0] == '[' {
			items = nil
			if err := json.Unmarshal(raw, &items); err != nil {
				return nil, fmt.Errorf("not a JSON array of objects: %w", err)
			}
		}
		for _, item := range items {
			obj := &unstructured.Unstructured{}
			if err := obj.UnmarshalJSON(item); err != nil {
				return nil, fmt.Errorf("not a Kubernetes object: %w", err)
			}
			objects = append(objects, obj)
		}
	}
}

func evaluate(obj *unstructured.Unstructured, script string) Result {
	result := Result{Kind: obj.GetKind(), Name: obj.GetName()}
	computed, err := status.Compute(obj)
	if err != nil {
		result.Error = fmt.Sprintf("kstatus: %v", err)
		return result
	}
	result.KStatus = &Verdict{Status: computed.Status.String(), Message: computed.Message}

	lua, err := runHealthScript(obj, script)
	if err != nil {
		result.Error = fmt.Sprintf("health script on %s: %v", obj.GetKind(), err)
		return result
	}
	result.Lua = lua
	result.Argo = argoHealth(obj, lua)
	return result
}

// argoHealth is what Argo CD shows for the object: gitops-engine answers for an object being
// deleted (unless it carries Argo CD's hook finalizer) before looking for a health script.
func argoHealth(obj *unstructured.Unstructured, lua *Verdict) *Verdict {
	if obj.GetDeletionTimestamp() != nil && !hasHookFinalizer(obj) {
		return &Verdict{Status: "Progressing", Message: "Pending deletion"}
	}
	return lua
}

func hasHookFinalizer(obj *unstructured.Unstructured) bool {
	for _, f := range obj.GetFinalizers() {
		if f == "argocd.argoproj.io/hook-finalizer" {
			return true
		}
	}
	return false
}
