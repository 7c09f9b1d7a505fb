// Deal expressions: which segments unlock a deal, e.g. `1001 AND (1002 OR NOT 1003)`. Compiled once, when a
// rule is loaded, into a closure over the person's segment set; never parsed per request.
//
// Grammar (keywords in any case; NOT binds tighter than AND, AND tighter than OR):
//   expr   := and ("OR" and)*
//   and    := unary ("AND" unary)*
//   unary  := "NOT" unary | "(" expr ")" | segment
//   segment:= [A-Za-z0-9._:-]+ (a segment id; a quoted "id" for one that reads like a keyword)

/** A syntax error, with the 1-based column where the expression stops making sense. */
export class DealExpressionError extends Error {
  readonly code = "AUD_ERR_DEAL_EXPRESSION";
  constructor(
    readonly reason: string,
    readonly column: number,
  ) {
    super(`${reason} at column ${column}`);
  }
}

/** True when the person's segments satisfy the expression. */
export type DealPredicate = (segments: ReadonlySet<string>) => boolean;

export interface CompiledExpression {
  readonly test: DealPredicate;
  /** Every segment id the expression names (to index rules by segment). */
  readonly segments: readonly string[];
  /** True when some assignment with none of the named segments matches (a NOT-only expression). */
  readonly matchesWithoutSegments: boolean;
}

interface Token {
  readonly kind: "id" | "and" | "or" | "not" | "(" | ")" | "end";
  readonly text: string;
  readonly column: number;
}

const ID_CHAR = /[A-Za-z0-9._:-]/;
const MAX_EXPRESSION_LENGTH = 4096;
const MAX_DEPTH = 64;

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i] as string;
    if (c === " " || c === "\t") {
      i++;
      continue;
    }
    const column = i + 1;
    if (c === "(" || c === ")") {
      out.push({ kind: c, text: c, column });
      i++;
    } else if (c === '"') {
      const end = src.indexOf('"', i + 1);
      if (end < 0) throw new DealExpressionError("unclosed quote", column);
      const text = src.slice(i + 1, end);
      if (text === "" || ![...text].every((ch) => ID_CHAR.test(ch))) {
        throw new DealExpressionError(
          "a quoted segment id must be letters, digits, '.', '_', ':' or '-'",
          column,
        );
      }
      out.push({ kind: "id", text, column });
      i = end + 1;
    } else if (ID_CHAR.test(c)) {
      let j = i;
      while (j < src.length && ID_CHAR.test(src[j] as string)) j++;
      const text = src.slice(i, j);
      const upper = text.toUpperCase();
      const kind = upper === "AND" ? "and" : upper === "OR" ? "or" : upper === "NOT" ? "not" : "id";
      out.push({ kind, text, column });
      i = j;
    } else {
      throw new DealExpressionError(`unexpected character '${c}'`, column);
    }
  }
  out.push({ kind: "end", text: "", column: src.length + 1 });
  return out;
}

/** Parses and compiles; throws DealExpressionError naming the column of the first problem. */
export function compileDealExpression(src: string): CompiledExpression {
  if (src.length > MAX_EXPRESSION_LENGTH) {
    throw new DealExpressionError(
      `longer than ${MAX_EXPRESSION_LENGTH} characters`,
      MAX_EXPRESSION_LENGTH + 1,
    );
  }
  const tokens = tokenize(src);
  if (tokens.length === 1) throw new DealExpressionError("empty expression", 1);
  let pos = 0;
  const named = new Set<string>();
  const peek = (): Token => tokens[pos] as Token;

  const parseOr = (depth: number): DealPredicate => {
    const parts = [parseAnd(depth)];
    while (peek().kind === "or") {
      pos++;
      parts.push(parseAnd(depth));
    }
    if (parts.length === 1) return parts[0] as DealPredicate;
    return (s) => {
      for (const p of parts) if (p(s)) return true;
      return false;
    };
  };
  const parseAnd = (depth: number): DealPredicate => {
    const parts = [parseUnary(depth)];
    while (peek().kind === "and") {
      pos++;
      parts.push(parseUnary(depth));
    }
    if (parts.length === 1) return parts[0] as DealPredicate;
    return (s) => {
      for (const p of parts) if (!p(s)) return false;
      return true;
    };
  };
  const parseUnary = (depth: number): DealPredicate => {
    if (depth > MAX_DEPTH) throw new DealExpressionError(`nested deeper than ${MAX_DEPTH}`, peek().column);
    const t = peek();
    if (t.kind === "not") {
      pos++;
      const inner = parseUnary(depth + 1);
      return (s) => !inner(s);
    }
    if (t.kind === "(") {
      pos++;
      const inner = parseOr(depth + 1);
      if (peek().kind !== ")") throw new DealExpressionError("expected ')'", peek().column);
      pos++;
      return inner;
    }
    if (t.kind === "id") {
      pos++;
      named.add(t.text);
      const id = t.text;
      return (s) => s.has(id);
    }
    const what = t.kind === "end" ? "end of expression" : `'${t.text}'`;
    throw new DealExpressionError(`expected a segment id, NOT or '(', found ${what}`, t.column);
  };

  const test = parseOr(0);
  if (peek().kind !== "end") {
    throw new DealExpressionError(`expected AND, OR or the end, found '${peek().text}'`, peek().column);
  }
  return { test, segments: [...named], matchesWithoutSegments: test(new Set()) };
}
