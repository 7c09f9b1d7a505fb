// Deal expressions: which segments unlock a deal, e.g. `1001 AND (1002 OR NOT 1003)`. Compiled once, when a
// rule is loaded, into a closure over the person's segment set and a postfix program (what the deal index runs
// per request); never parsed per request.
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
  /** Every segment id the expression names. */
  readonly segments: readonly string[];
  /** Segments the expression cannot match without (its top-level AND's plain ids): the rule's index keys. */
  readonly required: readonly string[];
  /** True when some assignment with none of the named segments matches (a NOT-only expression). */
  readonly matchesWithoutSegments: boolean;
  /**
   * The same expression in postfix, for an evaluator without closures (deal-index.ts): a segment id pushes
   * whether the person has it; NOT replaces the top; AND/OR with `n` replace the top `n` with their result.
   */
  readonly postfix: readonly PostfixStep[];
}

export type PostfixStep =
  | { readonly op: "id"; readonly id: string }
  | { readonly op: "not" }
  | { readonly op: "and" | "or"; readonly n: number };

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

type Node =
  | { readonly k: "id"; readonly id: string }
  | { readonly k: "not"; readonly e: Node }
  | { readonly k: "and" | "or"; readonly parts: readonly Node[] };

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

  const parseList = (kind: "and" | "or", next: (depth: number) => Node, depth: number): Node => {
    const parts = [next(depth)];
    while (peek().kind === kind) {
      pos++;
      parts.push(next(depth));
    }
    return parts.length === 1 ? (parts[0] as Node) : { k: kind, parts };
  };
  const parseOr = (depth: number): Node => parseList("or", parseAnd, depth);
  const parseAnd = (depth: number): Node => parseList("and", parseUnary, depth);
  const parseUnary = (depth: number): Node => {
    if (depth > MAX_DEPTH) throw new DealExpressionError(`nested deeper than ${MAX_DEPTH}`, peek().column);
    const t = peek();
    if (t.kind === "not") {
      pos++;
      return { k: "not", e: parseUnary(depth + 1) };
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
      return { k: "id", id: t.text };
    }
    const what = t.kind === "end" ? "end of expression" : `'${t.text}'`;
    throw new DealExpressionError(`expected a segment id, NOT or '(', found ${what}`, t.column);
  };

  const root = parseOr(0);
  if (peek().kind !== "end") {
    throw new DealExpressionError(`expected AND, OR or the end, found '${peek().text}'`, peek().column);
  }
  const test = compile(root);
  const postfix: PostfixStep[] = [];
  toPostfix(root, postfix);
  return {
    test,
    segments: [...named],
    required: requiredOf(root),
    matchesWithoutSegments: test(new Set()),
    postfix,
  };
}

function toPostfix(n: Node, out: PostfixStep[]): void {
  if (n.k === "id") out.push({ op: "id", id: n.id });
  else if (n.k === "not") {
    toPostfix(n.e, out);
    out.push({ op: "not" });
  } else {
    for (const p of n.parts) toPostfix(p, out);
    out.push({ op: n.k, n: n.parts.length });
  }
}

function compile(n: Node): DealPredicate {
  switch (n.k) {
    case "id": {
      const id = n.id;
      return (s) => s.has(id);
    }
    case "not": {
      const inner = compile(n.e);
      return (s) => !inner(s);
    }
    case "and": {
      const parts = n.parts.map(compile);
      return (s) => {
        for (let i = 0; i < parts.length; i++) if (!(parts[i] as DealPredicate)(s)) return false;
        return true;
      };
    }
    case "or": {
      const parts = n.parts.map(compile);
      return (s) => {
        for (let i = 0; i < parts.length; i++) if ((parts[i] as DealPredicate)(s)) return true;
        return false;
      };
    }
  }
}

function requiredOf(n: Node): string[] {
  if (n.k === "id") return [n.id];
  if (n.k === "and") return n.parts.flatMap((p) => (p.k === "id" || p.k === "and" ? requiredOf(p) : []));
  return [];
}
