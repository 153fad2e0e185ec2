package admission

import "testing"

func TestFromObject(t *testing.T) {
	tests := []struct {
		name, object string
		pointer      string
		images       []string
		wantErr      bool
	}{
		{"pod", `{"kind":"Pod","spec":{"initContainers":[{"name":"i","image":"a:1"}],"containers":[{"name":"c","image":"b:1"}]}}`, "/spec", []string{"b:1", "a:1"}, false},
		{"deployment", `{"kind":"Deployment","spec":{"template":{"spec":{"containers":[{"name":"c","image":"d:1"}]}}}}`, "/spec/template/spec", []string{"d:1"}, false},
		{"rollout", `{"kind":"Rollout","spec":{"template":{"spec":{"containers":[{"name":"c","image":"r:1"}]}}}}`, "/spec/template/spec", []string{"r:1"}, false},
		{"cronjob", `{"kind":"CronJob","spec":{"jobTemplate":{"spec":{"template":{"spec":{"containers":[{"name":"c","image":"j:1"}]}}}}}}`, "/spec/jobTemplate/spec/template/spec", []string{"j:1"}, false},
		{"service", `{"kind":"Service","spec":{}}`, "", nil, true},
		{"no template", `{"kind":"Deployment","spec":{}}`, "", nil, true},
		{"not json", `{`, "", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod, pointer, err := FromObject([]byte(tt.object))
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			var images []string
			for _, field := range containerLists {
				for _, c := range pod.list(field) {
					images = append(images, c.Image)
				}
			}
			if pointer != tt.pointer || len(images) != len(tt.images) {
				t.Fatalf("pointer %q images %v, want %q %v", pointer, images, tt.pointer, tt.images)
			}
			for i := range images {
				if images[i] != tt.images[i] {
					t.Errorf("images %v, want %v", images, tt.images)
				}
			}
		})
	}
}
