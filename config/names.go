package config

import (
	"os"
	"slices"

	"go.yaml.in/yaml/v3"
)

// Names are what a config file names: its products, journeys, regions and notifiers,
// each sorted once. ReadNames reads them leniently, for shell completion: a config that
// would not load (a secret not set here, a typo elsewhere) still completes.
type Names struct {
	Products, Journeys, Regions, Notifiers []string
}

// ReadNames reads the names of the config at path without validating it.
func ReadNames(path string) (Names, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Names{}, err
	}
	var f struct {
		Regions  map[string]yaml.Node `yaml:"regions"`
		Products []struct {
			Name     string `yaml:"name"`
			Journeys []struct {
				Name string `yaml:"name"`
			} `yaml:"journeys"`
		} `yaml:"products"`
		Notifiers map[string]yaml.Node `yaml:"notifiers"`
	}
	if err := yaml.Unmarshal(raw, &f); err != nil {
		return Names{}, err
	}
	var n Names
	for name := range f.Regions {
		n.Regions = append(n.Regions, name)
	}
	for name := range f.Notifiers {
		n.Notifiers = append(n.Notifiers, name)
	}
	for _, p := range f.Products {
		n.Products = append(n.Products, p.Name)
		for _, j := range p.Journeys {
			n.Journeys = append(n.Journeys, j.Name)
		}
	}
	for _, l := range []*[]string{&n.Products, &n.Journeys, &n.Regions, &n.Notifiers} {
		slices.Sort(*l)
		*l = slices.Compact(*l)
	}
	return n, nil
}
