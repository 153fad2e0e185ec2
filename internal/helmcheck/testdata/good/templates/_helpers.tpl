{{- define "payment.name" -}}{{ .Chart.Name }}{{- end -}}
