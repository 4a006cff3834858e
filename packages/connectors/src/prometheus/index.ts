/**
 * The Prometheus exposition-format parser (it lives in `@dataflow/core`, where
 * the `prometheus` parse transform uses it; re-exported here for the scrape source and for compatibility).
 */
export {
  parseExposition,
  sampleToRecord,
  sampleValueToJson,
  SeriesCache,
  unescapeLabelValue,
  type ExpositionError,
  type ExpositionParseOptions,
  type ExpositionParseResult,
  type MetricFamily,
  type MetricType,
  type PrometheusSample,
} from '@dataflow/core';
