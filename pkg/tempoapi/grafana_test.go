package tempoapi

// The messages Grafana's Tempo datasource decodes the JSON answers into
// (tempopb, by its protobuf JSON mapping), written from tempo.proto's
// field list. Decoding with unknown fields refused checks that the answers
// hold nothing Grafana's strict decoder would reject.

type pbSearchTagsResponse struct {
	TagNames []string `json:"tagNames"`
}

type pbSearchTagsV2Response struct {
	Scopes []struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	} `json:"scopes"`
}

type pbSearchTagValuesResponse struct {
	TagValues []string `json:"tagValues"`
}

type pbSearchTagValuesV2Response struct {
	TagValues []struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	} `json:"tagValues"`
}

type pbQueryRangeResponse struct {
	Series []struct {
		Labels  []pbKeyValue `json:"labels"`
		Samples []struct {
			TimestampMs int64    `json:"timestampMs,string"`
			Value       pbDouble `json:"value"`
		} `json:"samples"`
		PromLabels string `json:"promLabels"`
		Exemplars  []struct {
			Labels      []pbKeyValue `json:"labels"`
			Value       pbDouble     `json:"value"`
			TimestampMs int64        `json:"timestampMs,string"`
		} `json:"exemplars"`
	} `json:"series"`
	Metrics *pbSearchMetrics `json:"metrics"`
	Status  string           `json:"status"`
	Message string           `json:"message"`
}

type pbQueryInstantResponse struct {
	Series []struct {
		Labels     []pbKeyValue `json:"labels"`
		Value      pbDouble     `json:"value"`
		PromLabels string       `json:"promLabels"`
	} `json:"series"`
	Metrics *pbSearchMetrics `json:"metrics"`
	Status  string           `json:"status"`
	Message string           `json:"message"`
}

type pbBuildInfo struct {
	Version       string `json:"version"`
	Revision      string `json:"revision"`
	Branch        string `json:"branch"`
	BuildDate     string `json:"buildDate"`
	BuildUser     string `json:"buildUser"`
	GoVersion     string `json:"goVersion"`
	CanopyVersion string `json:"canopyVersion"`
}
