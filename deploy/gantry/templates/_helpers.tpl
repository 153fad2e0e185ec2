{{- define "gantry.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gantry.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "gantry.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gantry.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "gantry.labels" -}}
{{ include "gantry.selectorLabels" . }}
app.kubernetes.io/component: server
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "gantry.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "gantry.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "gantry.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "gantry.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "gantry.fullname" .)) .Values.tls.existingSecret -}}
{{- end -}}

{{/* The name the postgresql subchart gives its objects. */}}
{{- define "gantry.postgresql.fullname" -}}
{{- printf "%s-postgresql" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Where the store is: postgresql (the subchart), external, or sqlite. */}}
{{- define "gantry.store" -}}
{{- if .Values.postgresql.enabled -}}
postgresql
{{- else if or .Values.externalDatabase.url .Values.externalDatabase.urlKey -}}
external
{{- else -}}
sqlite
{{- end -}}
{{- end -}}

{{/* Whether the init container that copies secret files is needed. */}}
{{- define "gantry.secretFiles" -}}
{{- if or .Values.webhooks.existingSecret .Values.oidc.enabled .Values.git.ssh.existingSecret -}}
true
{{- end -}}
{{- end -}}

{{/* Refuses the combinations that cannot work, before anything is
applied. Every message names the values to change. */}}
{{- define "gantry.validate" -}}
{{- $store := include "gantry.store" . -}}
{{- $db := .Values.externalDatabase -}}
{{- $replicas := int .Values.replicaCount -}}
{{- if lt $replicas 1 -}}
{{- fail (printf "replicaCount is %d: gantry needs at least one replica" $replicas) -}}
{{- end -}}
{{- if and .Values.postgresql.enabled (or $db.url $db.urlKey) -}}
{{- fail "postgresql.enabled and externalDatabase are both set: choose one store (set postgresql.enabled=false to use externalDatabase)" -}}
{{- end -}}
{{- if and $db.url $db.urlKey -}}
{{- fail "externalDatabase.url and externalDatabase.urlKey are both set: give the URL in one place" -}}
{{- end -}}
{{- if and $db.urlKey (not $db.existingSecret) -}}
{{- fail "externalDatabase.urlKey needs externalDatabase.existingSecret, the Secret that holds the URL" -}}
{{- end -}}
{{- if $db.url -}}
{{- if not (regexMatch "^postgres(ql)?://" $db.url) -}}
{{- fail "externalDatabase.url must start with postgres:// or postgresql://" -}}
{{- end -}}
{{- if or (regexMatch "^postgres(ql)?://[^/@?]*:[^/@?]*@" $db.url) (regexMatch "[?&]password=" $db.url) -}}
{{- fail "externalDatabase.url holds a password, which would be readable in the Deployment: put it in a Secret (externalDatabase.existingSecret with passwordKey, or the whole URL under urlKey)" -}}
{{- end -}}
{{- end -}}
{{- if and (eq $store "sqlite") (gt $replicas 1) -}}
{{- fail (printf "replicaCount is %d but the store is SQLite (postgresql.enabled=false and no externalDatabase): SQLite serves one replica only; use PostgreSQL or replicaCount=1" $replicas) -}}
{{- end -}}
{{- if and (eq $store "sqlite") (not .Values.persistence.enabled) -}}
{{- fail "the store is SQLite (postgresql.enabled=false and no externalDatabase) but persistence.enabled=false: the run history would be lost with the pod; enable persistence or use PostgreSQL" -}}
{{- end -}}
{{- if and (gt $replicas 1) .Values.persistence.enabled -}}
{{- fail (printf "replicaCount is %d with persistence.enabled=true: every replica needs a state dir of its own (gantry serve locks it), so set persistence.enabled=false (an emptyDir per pod) or replicaCount=1" $replicas) -}}
{{- end -}}
{{- if and .Values.webhooks.existingSecret (not .Values.server.repos) -}}
{{- fail "webhooks.existingSecret needs server.repos: the repositories whose deliveries are accepted" -}}
{{- end -}}
{{- if .Values.oidc.enabled -}}
{{- range $k := list "issuer" "clientId" "existingSecret" "redirectUrl" -}}
{{- if not (index $.Values.oidc $k) -}}
{{- fail (printf "oidc.enabled needs oidc.%s" $k) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The store's environment: GANTRY_STORE and PGPASSWORD, from Secrets. */}}
{{- define "gantry.storeEnv" -}}
{{- $store := include "gantry.store" . -}}
{{- if eq $store "postgresql" -}}
{{- $pg := .Values.postgresql -}}
{{- $auth := default dict $pg.auth -}}
{{- $user := default "gantry" $auth.username -}}
{{- $dbname := default "gantry" $auth.database -}}
- name: GANTRY_STORE
  value: {{ printf "postgres://%s@%s:5432/%s?sslmode=disable" $user (include "gantry.postgresql.fullname" .) $dbname | quote }}
- name: PGPASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ default (include "gantry.postgresql.fullname" .) $auth.existingSecret }}
      key: {{ default "password" $auth.secretKey }}
{{- else if eq $store "external" -}}
{{- $db := .Values.externalDatabase -}}
{{- if $db.urlKey }}
- name: GANTRY_STORE
  valueFrom:
    secretKeyRef:
      name: {{ $db.existingSecret }}
      key: {{ $db.urlKey }}
{{- else }}
- name: GANTRY_STORE
  value: {{ $db.url | quote }}
{{- end }}
{{- if and $db.existingSecret $db.passwordKey }}
- name: PGPASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $db.existingSecret }}
      key: {{ $db.passwordKey }}
      {{- if $db.urlKey }}
      # The URL from the Secret may carry the password itself.
      optional: true
      {{- end }}
{{- end }}
{{- end -}}
{{- end -}}
