/**
 * Request validation by the rules declared in the proto (`buf.validate` annotations), so a limit
 * is written once, where clients can see it through reflection, and every server enforces it the
 * same way. Violations come back as Stratum `FieldViolation`s: snake_case paths
 * (`nics[0].l3_network_uuid`) and descriptions worded like the hand-written checks.
 */
import { create, createRegistry, getOption, hasOption, type DescExtension, type DescField, type DescFile, type DescMessage, type DescService, type Message, type MessageShape } from "@bufbuild/protobuf";
import { reflect, type Path, type ReflectMessage } from "@bufbuild/protobuf/reflect";
import { createValidator, type Validator, type Violation } from "@bufbuild/protovalidate";
import { FieldRulesSchema, field as fieldRules } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import { Code, StratumError, type FieldViolation } from "@stratum/core";

/** Checks one request message against its schema's rules. */
export type RequestValidator = (schema: DescMessage, message: Message) => FieldViolation[];

export interface RequestValidatorOptions {
  /** Files or extensions with predefined rules (`extend buf.validate.StringRules ...`) the schemas use. */
  predefinedRules?: readonly (DescFile | DescExtension)[];
  /**
   * What a `string.pattern` means, in words, keyed by the pattern exactly as the proto declares
   * it; added to (and overriding) `PATTERN_DESCRIPTIONS`. protovalidate's own message for a
   * pattern quotes the regex, which tells a caller little.
   */
  patternDescriptions?: Readonly<Record<string, string>>;
}

/**
 * The patterns Stratum's protos use, and what they mean to a caller. The wording is the
 * hand-written checks' (`fields.ts`), so either path words a mistake the same way.
 */
export const PATTERN_DESCRIPTIONS: Readonly<Record<string, string>> = {
  "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$": "must be a lowercase UUID",
  "^[!-~]*$": "must be printable ASCII without spaces",
  // A name: `required` rejects "", this rejects the blank ones ("  "), which are as missing.
  "\\S": "is required",
};

/**
 * Patterns are matched with the platform's RegExp (compiled once each) rather than protovalidate's
 * default RE2 port: every pattern comes from our own protos, never from a caller, so RE2's
 * linear-time guarantee buys nothing, and RegExp is about twice as fast (bench/validate.bench.ts).
 * The `u` flag makes it match code points, as RE2 does.
 */
function platformRegexMatch(): (pattern: string, against: string) => boolean {
  const compiled = new Map<string, RegExp>();
  return (pattern, against) => {
    let re = compiled.get(pattern);
    if (!re) compiled.set(pattern, (re = new RegExp(pattern, "u")));
    return re.test(against);
  };
}

/**
 * A validator of request messages. protovalidate compiles a schema's rules the first time it sees
 * the schema (a few ms per message type) and keeps the plan, so create one validator per process
 * and reuse it: `validateMessage` and `validationInterceptor()` share one.
 */
export function requestValidator(options: RequestValidatorOptions = {}): RequestValidator {
  const validator: Validator = createValidator({
    ...(options.predefinedRules?.length ? { registry: createRegistry(...options.predefinedRules) } : {}),
    regexMatch: platformRegexMatch(),
  });
  const patterns = { ...PATTERN_DESCRIPTIONS, ...options.patternDescriptions };
  return (schema, message) => {
    const result = validator.validate(schema, message as MessageShape<DescMessage>);
    switch (result.kind) {
      case "valid":
        return [];
      case "invalid":
        return result.violations.map((v) => ({ field: formatPath(v.field), description: describe(v, patterns) }));
      case "error":
        // A rule that does not compile is a bug in our schema, not the caller's mistake.
        throw new StratumError(Code.INTERNAL, `validation rules of ${schema.typeName} cannot be evaluated: ${result.error.message}`, {
          reason: "VALIDATION_RULES_BROKEN",
          cause: result.error,
        });
    }
  };
}


/** Created on first use: loading the CEL runtime is not free, and a process may never validate. */
let shared: RequestValidator | undefined;

/** Field violations of `message` by the rules its schema declares; empty when valid. */
export function validateMessage<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): FieldViolation[] {
  return sharedValidator()(schema, message);
}

/**
 * Compiles the rules of every request type of `services` now. The first validation of a message
 * type compiles its rules (tens of ms; the very first also loads the CEL runtime, hundreds), which
 * a service should pay at start-up, not on its first requests after a deploy.
 */
export function precompileRules(services: readonly DescService[], validate: RequestValidator = sharedValidator()): void {
  for (const service of services) for (const method of service.methods) validate(method.input, create(method.input));
}

/** The process-wide validator behind `validateMessage`, `precompileRules` and `validationInterceptor()`. */
export function sharedValidator(): RequestValidator {
  return (shared ??= requestValidator());
}

/** Throws one INVALID_ARGUMENT listing every violation of the schema's rules, if any. */
export function assertValid<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): void {
  const violations = validateMessage(schema, message);
  if (violations.length > 0) throw StratumError.invalidArgument(violations);
}

/** `nics[0].name`, `labels["env"]`: proto names, list indexes, quoted map keys. */
export function formatPath(path: Path): string {
  let out = "";
  for (const item of path) {
    switch (item.kind) {
      case "field":
      case "oneof":
        out += out ? `.${item.name}` : item.name;
        break;
      case "extension":
        out += `${out ? "." : ""}[${item.typeName}]`;
        break;
      case "list_sub":
        out += `[${item.index}]`;
        break;
      case "map_sub":
        out += typeof item.key === "string" ? `[${JSON.stringify(item.key)}]` : `[${String(item.key)}]`;
        break;
    }
  }
  return out;
}

/** Range rules whose default message spells both bounds out; Stratum says "between". */
const BETWEEN = /\.gte_lte$/;

function describe(v: Violation, patterns: Readonly<Record<string, string>>): string {
  const suffix = v.forKey ? " (map key)" : "";
  if (v.ruleId === "required") return `is required${suffix}`;
  if (BETWEEN.test(v.ruleId)) {
    const rules = violatedRules(v);
    const gte = rules?.desc.fields.find((f) => f.name === "gte");
    const lte = rules?.desc.fields.find((f) => f.name === "lte");
    if (rules && gte && lte) return `must be between ${String(rules.get(gte))} and ${String(rules.get(lte))}${suffix}`;
  }
  if (v.ruleId.endsWith(".pattern")) {
    const rules = violatedRules(v);
    const pattern = rules?.desc.fields.find((f) => f.name === "pattern");
    const words = rules && pattern ? patterns[String(rules.get(pattern))] : undefined;
    if (words) return `${words}${suffix}`;
  }
  // protovalidate's standard messages start with "value must ..."; the field is named already.
  return `${v.message.replace(/^value /, "")}${suffix}`;
}

/**
 * The rules message that holds the violated rule, read from the field's options: the violation's
 * rule path ends at e.g. `uint32.gte` (or `repeated.items.string.pattern`), so its parent is the
 * `UInt32Rules` / `StringRules` holding the rule's value and its siblings.
 */
function violatedRules(v: Violation): ReflectMessage | undefined {
  const last = v.field[v.field.length - 1];
  if (!last || last.kind !== "field") return undefined;
  let node = rulesOf(last);
  if (!node) return undefined;
  for (const item of v.rule.slice(0, -1)) {
    if (item.kind !== "field" || item.fieldKind !== "message") return undefined;
    node = node.get(item) as ReflectMessage;
  }
  return node;
}

/** A field's rules, parsed once: getOption decodes them from the options' bytes on every call. */
const parsedRules = new WeakMap<DescField, ReflectMessage | null>();

function rulesOf(field: DescField): ReflectMessage | undefined {
  let rules = parsedRules.get(field);
  if (rules === undefined) {
    rules = hasOption(field, fieldRules) ? reflect(FieldRulesSchema, getOption(field, fieldRules)) : null;
    parsedRules.set(field, rules);
  }
  return rules ?? undefined;
}
