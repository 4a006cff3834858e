/**
 * The Prometheus exposition-format parser.
 */
export {
  parseExposition,
  SeriesCache,
  unescapeLabelValue,
  type ExpositionError,
  type ExpositionParseOptions,
  type ExpositionParseResult,
  type MetricFamily,
  type MetricType,
  type PrometheusSample,
} from './exposition-parser.js';
