package metrics

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape is one scrape of a /metrics handler: every sample by its series
// (name{label="value",...}, labels sorted; histograms as _bucket, _count
// and _sum series), and every family as parsed.
type scrape struct {
	samples  map[string]float64
	families map[string]*dto.MetricFamily
}

// scrapeHandler GETs h as Prometheus would and parses the text format.
func scrapeHandler(t *testing.T, h http.Handler) scrape {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: status %d: %s", rec.Code, rec.Body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parsing the scrape: %v", err)
	}
	s := scrape{samples: make(map[string]float64), families: families}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			labels := m.GetLabel()
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				s.samples[series(name, labels)] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				s.samples[series(name, labels)] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				s.samples[series(name+"_count", labels)] = float64(h.GetSampleCount())
				s.samples[series(name+"_sum", labels)] = h.GetSampleSum()
				for _, b := range h.GetBucket() {
					le := model.FloatString(b.GetUpperBound()).String()
					s.samples[series(name+"_bucket", labels, "le", le)] = float64(b.GetCumulativeCount())
				}
			default:
				s.samples[series(name, labels)] = m.GetUntyped().GetValue()
			}
		}
	}
	return s
}

// series renders a series key: name{a="1",b="2"}, labels sorted, with
// extra label pairs added.
func series(name string, labels []*dto.LabelPair, extra ...string) string {
	var pairs []string
	for _, l := range labels {
		pairs = append(pairs, l.GetName()+`="`+l.GetValue()+`"`)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		pairs = append(pairs, extra[i]+`="`+extra[i+1]+`"`)
	}
	slices.Sort(pairs)
	if len(pairs) == 0 {
		return name
	}
	return name + "{" + strings.Join(pairs, ",") + "}"
}

// key builds a series key from name and label pairs, as series does.
func key(name string, labelPairs ...string) string {
	return series(name, nil, labelPairs...)
}

// with reports whether the scrape has a series whose key starts with
// prefix.
func (s scrape) with(prefix string) bool {
	for k := range s.samples {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

// wantDeltas checks that each series grew from before to after by the
// given amount (0: did not change).
func wantDeltas(t *testing.T, before, after scrape, deltas map[string]float64) {
	t.Helper()
	for k, want := range deltas {
		if got := after.samples[k] - before.samples[k]; got != want {
			t.Errorf("%s: went from %v to %v (+%v), want +%v", k, before.samples[k], after.samples[k], got, want)
		}
	}
}
