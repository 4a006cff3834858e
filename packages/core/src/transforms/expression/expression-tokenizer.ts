/**
 * The tokenizer of the filter expression language: one linear pass over the
 * text, no regular expression that can backtrack over a whole literal, so a
 * 1 MB string literal costs one scan.
 */
import { ExpressionSyntaxError } from './expression-syntax-error.js';

/** The kinds of token the expression language has. */
export type TokenKind =
  | 'identifier'
  | 'string'
  | 'number'
  | 'and'
  | 'or'
  | 'not'
  | 'true'
  | 'false'
  | 'null'
  | 'comparison'
  | '('
  | ')'
  | '['
  | ']'
  | '.'
  | 'end';

/** The comparison operators. */
export type ComparisonOperator = '==' | '!=' | '>' | '>=' | '<' | '<=';

/** One token: its kind, its source text (identifiers, keywords, operators) or value (literals), and its offset. */
export interface Token {
  readonly kind: TokenKind;
  /** The identifier, keyword or operator as written; empty for literals. */
  readonly text: string;
  /** The decoded value of a string or number literal. */
  readonly value?: string | number;
  readonly position: number;
}

const KEYWORDS: ReadonlyMap<string, TokenKind> = new Map<string, TokenKind>([
  ['and', 'and'],
  ['or', 'or'],
  ['not', 'not'],
  ['true', 'true'],
  ['false', 'false'],
  ['null', 'null'],
]);

const IDENTIFIER = /[A-Za-z_$][A-Za-z0-9_$]*/y;
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

const SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  '"': '"',
  "'": "'",
  '\\': '\\',
  '/': '/',
  n: '\n',
  r: '\r',
  t: '\t',
  b: '\b',
  f: '\f',
};

/**
 * Splits `text` into tokens, ending with an `end` token.
 *
 * @throws ExpressionSyntaxError on a character that starts no token, an
 * unterminated string or an unknown escape.
 */
export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
      continue;
    }
    const start = i;
    if (c === '"' || c === "'") {
      const { value, end } = readString(text, start);
      tokens.push({ kind: 'string', text: '', value, position: start });
      i = end;
    } else if (isDigit(c) || (c === '-' && isDigit(text[i + 1]))) {
      NUMBER.lastIndex = start;
      const match = NUMBER.exec(text) as RegExpExecArray;
      const value = Number(match[0]);
      if (!Number.isFinite(value)) {
        throw new ExpressionSyntaxError(start, 'a finite number', `'${preview(match[0])}'`);
      }
      tokens.push({ kind: 'number', text: '', value, position: start });
      i = NUMBER.lastIndex;
    } else if (/[A-Za-z_$]/.test(c)) {
      IDENTIFIER.lastIndex = start;
      const word = (IDENTIFIER.exec(text) as RegExpExecArray)[0];
      tokens.push({ kind: KEYWORDS.get(word.toLowerCase()) ?? 'identifier', text: word, position: start });
      i = IDENTIFIER.lastIndex;
    } else {
      const two = text.slice(i, i + 2);
      if (two === '==' || two === '!=' || two === '>=' || two === '<=') {
        tokens.push({ kind: 'comparison', text: two, position: start });
        i += 2;
      } else if (two === '&&' || two === '||') {
        tokens.push({ kind: two === '&&' ? 'and' : 'or', text: two, position: start });
        i += 2;
      } else if (c === '>' || c === '<') {
        tokens.push({ kind: 'comparison', text: c, position: start });
        i++;
      } else if (c === '!') {
        tokens.push({ kind: 'not', text: c, position: start });
        i++;
      } else if (c === '(' || c === ')' || c === '[' || c === ']' || c === '.') {
        tokens.push({ kind: c, text: c, position: start });
        i++;
      } else if (c === '=') {
        throw new ExpressionSyntaxError(start, "'==' (a single '=' is not an operator)", "'='");
      } else if (c === '&' || c === '|') {
        throw new ExpressionSyntaxError(start, `'${c}${c}'`, `'${c}'`);
      } else {
        throw new ExpressionSyntaxError(start, 'a field, a literal, an operator or a parenthesis', `'${c}'`);
      }
    }
  }
  tokens.push({ kind: 'end', text: '', position: text.length });
  return tokens;
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}

/** Reads a quoted string starting at `start`; copies unescaped runs as slices so the cost is linear. */
function readString(text: string, start: number): { value: string; end: number } {
  const quote = text[start];
  const parts: string[] = [];
  let runStart = start + 1;
  let i = start + 1;
  while (i < text.length) {
    const c = text[i];
    if (c === quote) {
      parts.push(text.slice(runStart, i));
      return { value: parts.join(''), end: i + 1 };
    }
    if (c !== '\\') {
      i++;
      continue;
    }
    parts.push(text.slice(runStart, i));
    const escape = text[i + 1];
    if (escape === undefined) break;
    const simple = SIMPLE_ESCAPES[escape];
    if (simple !== undefined) {
      parts.push(simple);
      i += 2;
    } else if (escape === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
      parts.push(String.fromCharCode(parseInt(text.slice(i + 2, i + 6), 16)));
      i += 6;
    } else {
      throw new ExpressionSyntaxError(
        i,
        `an escape sequence (\\" \\' \\\\ \\/ \\n \\r \\t \\b \\f or \\uXXXX)`,
        `'\\${escape}'`,
      );
    }
    runStart = i;
  }
  throw new ExpressionSyntaxError(
    start,
    `a closing ${quote} for the string starting at position ${start}`,
    'end of expression',
    `Unterminated string starting at position ${start}: expected a closing ${quote} before the end of the expression`,
  );
}

/** A short, printable excerpt of source text for error messages. */
export function preview(text: string): string {
  return text.length > 24 ? `${text.slice(0, 24)}…` : text;
}
