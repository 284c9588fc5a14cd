package probe

import "fmt"

// Settings hold the settings of every inspection.
type Settings struct {
	Consistency Consistency
	Health      Health
	BigValues   BigValues
	KeyCount    KeyCount
	HotKeys     HotKeys
}

// DefaultSettings returns every inspection with its defaults.
func DefaultSettings() Settings {
	return Settings{Health: DefaultHealth(), BigValues: DefaultBigValues(), KeyCount: DefaultKeyCount(), HotKeys: DefaultHotKeys()}
}

// All returns every inspection, in the order of Names.
func (s Settings) All() []Inspection {
	return []Inspection{s.Consistency, s.Health, s.BigValues, s.KeyCount, s.HotKeys}
}

// Validate checks every inspection's settings.
func (s Settings) Validate() error {
	for _, err := range []error{s.Health.Validate(), s.BigValues.Validate(), s.KeyCount.Validate(), s.HotKeys.Validate()} {
		if err != nil {
			return err
		}
	}
	return nil
}

// Inspection returns the inspection called name.
func (s Settings) Inspection(name string) (Inspection, error) {
	for _, in := range s.All() {
		if in.Name() == name {
			return in, nil
		}
	}
	return nil, fmt.Errorf("unknown inspection %q: want one of %v", name, Names())
}

// Names returns the names of the inspections.
func Names() []string {
	all := DefaultSettings().All()
	names := make([]string, len(all))
	for i, in := range all {
		names[i] = in.Name()
	}
	return names
}
