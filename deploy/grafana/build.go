package grafana

// The classic dashboard schema (v1) is deprecated in the SDK in favour of
// dashboardv2, which only Grafana 12 with the v2 schema enabled imports;
// v1 JSON imports into every Grafana in use.
//lint:file-ignore SA1019 the v1 dashboard builder is chosen on purpose.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// File is one generated dashboard: its file name in deploy/grafana and
// its JSON.
type File struct {
	Name string
	JSON []byte
}

// Dashboards builds every dashboard and returns its JSON, in file order.
func Dashboards() ([]File, error) {
	var out []File
	for _, d := range []struct {
		name  string
		build func() *dashboard.DashboardBuilder
	}{
		{"etcd-fleet.json", fleet},
		{"etcd-scenario.json", scenario},
		{"etcd-cluster.json", cluster},
		{"etcd-troubleshooting.json", troubleshooting},
	} {
		dash, err := d.build().Build()
		if err != nil {
			return nil, fmt.Errorf("build %s: %w", d.name, err)
		}
		js, err := json.MarshalIndent(dash, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("marshal %s: %w", d.name, err)
		}
		out = append(out, File{Name: d.name, JSON: append(js, '\n')})
	}
	return out, nil
}

// Write writes every dashboard into dir, leaving files whose content is
// unchanged untouched.
func Write(dir string) error {
	files, err := Dashboards()
	if err != nil {
		return err
	}
	for _, f := range files {
		path := filepath.Join(dir, f.Name)
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, f.JSON) {
			continue
		}
		if err := os.WriteFile(path, f.JSON, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// datasource is the Prometheus data source the dashboards query: the
// dashboard's datasource variable, an etcdgate node or its Service.
var datasource = common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${datasource}")}

// newDashboard is a dashboard with the datasource variable, the last 30
// minutes and the etcdgate tag.
func newDashboard(uid, title, description string) *dashboard.DashboardBuilder {
	return dashboard.NewDashboardBuilder(title).
		Uid(uid).
		Description(description).
		Tags([]string{"etcdgate", "etcd"}).
		Refresh("1m").
		Time("now-30m", "now").
		Timezone(common.TimeZoneBrowser).
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").Label("Data source").Type("prometheus")).
		// The other etcdgate dashboards, keeping the time range and the
		// variables' values: fleet to scenario to cluster and back.
		Link(dashboard.NewDashboardLinkBuilder("etcdgate").Type(dashboard.DashboardLinkTypeDashboards).
			Tags([]string{"etcdgate"}).AsDropdown(false).IncludeVars(true).KeepTime(true))
}

// labelVariable is a query variable over label_values(series, label);
// multi ones offer All (any value: .*).
func labelVariable(name, label, series string, multi bool) *dashboard.QueryVariableBuilder {
	q := fmt.Sprintf("label_values(%s, %s)", series, label)
	v := dashboard.NewQueryVariableBuilder(name).
		Label(label).
		Datasource(datasource).
		Query(dashboard.StringOrMap{String: cog.ToPtr(q)}).
		Definition(q).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc)
	if multi {
		v = v.Multi(true).IncludeAll(true).AllValue(".*")
	}
	return v
}

// query is a range query drawn with a legend.
func query(expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().Datasource(datasource).Expr(expr).LegendFormat(legend).Range()
}

// tableQuery is an instant query shown as a table, one row per series.
func tableQuery(expr string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().Datasource(datasource).Expr(expr).Instant().Format(prometheus.PromQueryFormatTable)
}

func graph(title, unit string, w, h uint32, qs ...*prometheus.DataqueryBuilder) *timeseries.PanelBuilder {
	p := timeseries.NewPanelBuilder().Title(title).Unit(unit).Span(w).Height(h).Datasource(datasource)
	for i, q := range qs {
		p = p.WithTarget(q.RefId(refID(i)))
	}
	return p
}

func single(title, unit string, w, h uint32, qs ...*prometheus.DataqueryBuilder) *stat.PanelBuilder {
	p := stat.NewPanelBuilder().Title(title).Unit(unit).Span(w).Height(h).Datasource(datasource).
		GraphMode(common.BigValueGraphModeArea).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}))
	for i, q := range qs {
		p = p.WithTarget(q.RefId(refID(i)))
	}
	return p
}

func grid(title, description string, w, h uint32, qs ...*prometheus.DataqueryBuilder) *table.PanelBuilder {
	p := table.NewPanelBuilder().Title(title).Description(description).Span(w).Height(h).Datasource(datasource)
	for i, q := range qs {
		p = p.WithTarget(q.RefId(refID(i)))
	}
	return p
}

func sprintf(format string, a ...any) string { return fmt.Sprintf(format, a...) }

// refID names the i-th query of a panel as Grafana does: A, B, ...
func refID(i int) string { return string(rune('A' + i)) }

// linkClusters makes the cluster column of a table a link to the
// cluster dashboard (L3) for the value in the row, keeping the time range.
func linkClusters(p *table.PanelBuilder) *table.PanelBuilder {
	return p.OverrideByName("cluster", []dashboard.DynamicConfigValue{{
		Id: "links",
		Value: []map[string]string{{
			"title": "etcd cluster ${__value.raw} (L3)",
			"url":   "/d/etcdgate-cluster?var-cluster=${__value.raw}&${__url_time_range}",
		}},
	}})
}
