package main

import (
	"context"
	"fmt"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// validHealth lists the health codes Argo CD accepts from a script; any other answer is shown
// as Unknown with a fixed message.
var validHealth = map[string]bool{
	"Healthy": true, "Progressing": true, "Degraded": true,
	"Suspended": true, "Missing": true, "Unknown": true,
}

// runHealthScript runs a health script the way Argo CD runs a `health.lua` of a resource
// customization: a Lua state without the standard libraries but for package, base and
// table (Argo CD adds a reduced os library with time and date, which these scripts do not
// use), a one-second deadline, and the object as the global table `obj`.
func runHealthScript(obj *unstructured.Unstructured, script string) (*Verdict, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	// In Argo CD's order.
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return nil, fmt.Errorf("opening the %q library: %w", lib.name, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, obj.Object))
	if err := l.DoString(script); err != nil {
		return nil, err
	}
	switch ret := l.Get(-1).(type) {
	case *lua.LTable:
		verdict := &Verdict{
			Status:  stringField(ret, "status"),
			Message: stringField(ret, "message"),
		}
		if !validHealth[verdict.Status] {
			return &Verdict{Status: "Unknown", Message: "Lua returned an invalid health status"}, nil
		}
		return verdict, nil
	case *lua.LNilType:
		// Argo CD treats a script that returns nothing as "no health".
		return &Verdict{}, nil
	default:
		return nil, fmt.Errorf("expect table output from Lua script, not %s", ret.Type())
	}
}

func stringField(t *lua.LTable, key string) string {
	if s, ok := t.RawGetString(key).(lua.LString); ok {
		return string(s)
	}
	return ""
}

// toLua converts a decoded object into Lua values as Argo CD does: numbers of any Go type
// become Lua numbers, arrays become sequences, maps become tables keyed by string, and
// anything else (null included) becomes nil, so a field set to null is absent in Lua.
func toLua(l *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case string:
		return lua.LString(v)
	case float64:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case int32:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case []any:
		seq := l.CreateTable(len(v), 0)
		for _, item := range v {
			seq.Append(toLua(l, item))
		}
		return seq
	case map[string]any:
		table := l.CreateTable(0, len(v))
		for key, item := range v {
			table.RawSetH(lua.LString(key), toLua(l, item))
		}
		return table
	default:
		return lua.LNil
	}
}
