package evaluator

import (
	"reflect"
	"testing"
)

// TestGroupStateHoldsNoPointer: fused aggregations keep a groupState per
// group and step, hundreds of megabytes for a fleet-wide range query; the
// GC scans none of it only while the type holds no pointer.
func TestGroupStateHoldsNoPointer(t *testing.T) {
	typ := reflect.TypeFor[groupState]()
	for i := range typ.NumField() {
		switch f := typ.Field(i); f.Type.Kind() {
		case reflect.Float64, reflect.Bool:
		default:
			t.Errorf("groupState.%s is a %s: the state must stay pointer-free", f.Name, f.Type)
		}
	}
}
