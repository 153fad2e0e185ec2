package analysis

import (
	"os"
	"path/filepath"
	"testing"
)

func FuzzParseTemplates(f *testing.F) {
	files, _ := filepath.Glob("testdata/argo/*.yaml")
	for _, file := range files {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("kind: AnalysisTemplate\nspec: {metrics: [{name: x, provider: {web: {url: '{{args.a}}'}}}]}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ts, err := ParseTemplates("fuzz.yaml", data)
		if err != nil {
			return
		}
		for _, tm := range ts {
			_ = Check(tm, Options{Args: nil})
		}
	})
}

func FuzzCondition(f *testing.F) {
	for _, s := range []string{"result[0] < 0.25", "len(result) > 0", "isNaN(result)", "asInt(result) > 1", "default(result, 1) == 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		c, err := CompileCondition(src)
		if err != nil {
			return
		}
		_, _ = c.Eval([]float64{0.1})
		_, _ = c.Eval(nil)
	})
}
