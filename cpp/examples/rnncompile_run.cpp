// rnncompile_run: run a compiled model on inputs from a JSON file, print the outputs as JSON.
//
//   rnncompile_run OUT_DIR INPUTS.json [-o OUTPUTS.json] [--threads N] [--reset-between]
//   rnncompile_run OUT_DIR --text-file TEXTS.txt [INPUTS.json] [-o OUTPUTS.json] [--threads N]
//
// INPUTS.json is {"<input name>": nested array, ...} for one call, or a list of such objects: the
// chunks of a stream, run in order on one session, so a stateful model carries its state from one
// chunk to the next (--reset-between starts every chunk from zero states instead). The output has
// the same form: {"<output name>": nested array} or a list of them. Text inputs (a host tokenizer's or a
// graph input of dtype string) take an array of strings, one per batch row (or [["text"], ...]).
// --text-file: one text per line (a trailing "\r" is dropped: CRLF files) for a model with one text
// input, as one batch; INPUTS.json then holds the other inputs, if any. Exit status: 0 done, 2 bad
// input (the message names the file, the input and what was expected), 3 anything else.
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include "json_tensors.hpp"

namespace {

using nlohmann::json;
using rnncompile::Error;

const char* kUsage =
    "usage: rnncompile_run OUT_DIR INPUTS.json [-o OUTPUTS.json] [--threads N] [--reset-between]\n"
    "       rnncompile_run OUT_DIR --text-file TEXTS.txt [INPUTS.json] [-o OUTPUTS.json] [--threads N]\n"
    "  INPUTS.json: {\"input name\": nested array} for one call, or a list of them (chunks of a stream;\n"
    "  stateful models carry their state across chunks unless --reset-between); text inputs take\n"
    "  arrays of strings. TEXTS.txt: one text per line, for a model with one text input.\n";

struct Args {
  std::string out_dir, inputs, output, text_file;
  int threads = 0;
  bool reset_between = false;
};

Args parse_args(int argc, char** argv) {
  Args a;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      std::exit(0);
    } else if (arg == "--reset-between") {
      a.reset_between = true;
    } else if ((arg == "-o" || arg == "--output" || arg == "--threads" || arg == "--text-file") && i + 1 < argc) {
      std::string value = argv[++i];
      if (arg == "--threads") {
        std::size_t used = 0;
        try {
          a.threads = std::stoi(value, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used != value.size() || a.threads < 0)
          throw Error("expected a whole number >= 0 (0: the available CPUs), got \"" + value + "\"", "--threads");
      } else if (arg == "--text-file") {
        a.text_file = value;
      } else {
        a.output = value;
      }
    } else if (!arg.empty() && arg[0] == '-') {
      throw Error(std::string("unknown option or missing value\n") + kUsage, arg);
    } else {
      positional.push_back(arg);
    }
  }
  const std::size_t want_min = a.text_file.empty() ? 2 : 1;
  if (positional.size() < want_min || positional.size() > 2)
    throw Error(std::string(a.text_file.empty() ? "expected OUT_DIR and INPUTS.json\n" : "expected OUT_DIR [INPUTS.json]\n") +
                    kUsage,
                "arguments");
  a.out_dir = positional[0];
  if (positional.size() == 2) a.inputs = positional[1];
  return a;
}

json read_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read the file", path);
  try {
    return json::parse(in);
  } catch (const json::parse_error& e) {
    throw Error(std::string("invalid JSON: ") + e.what(), path);
  }
}

struct Call {
  rnncompile::TensorMap tensors;
  rnncompile::TextMap texts;
};

bool is_text_input(const rnncompile::Manifest& m, const std::string& name) {
  for (const auto* t : m.text_inputs())
    if (t->name == name) return true;
  return false;
}

// ["a", "b"] or [["a"], ["b"]]: one string per batch row.
std::vector<std::string> texts_from_json(const json& value, const std::string& where) {
  if (!value.is_array()) throw Error("expected an array of strings, one per batch row", where);
  std::vector<std::string> rows;
  for (std::size_t r = 0; r < value.size(); ++r) {
    const json& v = value[r].is_array() && value[r].size() == 1 ? value[r][0] : value[r];
    if (!v.is_string())
      throw Error("row " + std::to_string(r) + ": expected a string (or [string]), found " + v.dump().substr(0, 40), where);
    rows.push_back(v.get<std::string>());
  }
  return rows;
}

Call call_inputs(const rnncompile::Manifest& m, const json& obj, const std::string& where) {
  if (!obj.is_object()) throw Error("expected an object {input name: array}", where);
  Call call;
  for (const auto& item : obj.items()) {
    const std::string at = where + "[" + item.key() + "]";
    if (is_text_input(m, item.key())) call.texts[item.key()] = texts_from_json(item.value(), at);
    else call.tensors[item.key()] = rnncompile_example::tensor_from_json(item.value(), at);
  }
  return call;
}

// TEXTS.txt: one text per line; a trailing "\r" (CRLF) is dropped; no line after the last "\n".
std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read the file", path);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
  }
  return lines;
}

json outputs_json(const rnncompile::Model& model, const rnncompile::TensorMap& outs) {
  json obj = json::object();
  for (const auto* spec : model.manifest().model_outputs())
    obj[spec->name] = rnncompile_example::tensor_to_json(outs.at(spec->name));
  return obj;
}

// Errors about an input name the file (and chunk) it came from.
rnncompile::TensorMap run_call(rnncompile::Session& session, const Call& call, const std::string& where) {
  try {
    return session.run(call.tensors, call.texts);
  } catch (const Error& e) {
    if (e.where().rfind("input", 0) != 0 && e.where().rfind("text input", 0) != 0) throw;
    throw Error(e.message(), where + ": " + e.where());
  }
}

int run(const Args& args) {
  json doc = args.inputs.empty() ? json::object() : read_json(args.inputs);
  rnncompile::Options options;
  options.threads = args.threads;
  rnncompile::Model model = rnncompile::Model::open(args.out_dir, options);
  rnncompile::Session session = model.session();
  json result;
  if (!args.text_file.empty()) {
    const auto text_inputs = model.manifest().text_inputs();
    if (text_inputs.size() != 1) {
      std::string names;
      for (const auto* t : text_inputs) names += (names.empty() ? "" : ", ") + t->name;
      throw Error(text_inputs.empty() ? "the model takes no text"
                                      : "the model has text inputs " + names + ": give them in INPUTS.json",
                  "--text-file");
    }
    if (doc.is_array()) throw Error("with --text-file, expected one object {input name: array}", args.inputs);
    const std::string where = args.inputs.empty() ? args.text_file : args.inputs;
    Call call = call_inputs(model.manifest(), doc, where);
    call.texts[text_inputs[0]->name] = read_lines(args.text_file);
    try {
      result = outputs_json(model, session.run(call.tensors, call.texts));
    } catch (const Error& e) {
      if (e.where().rfind("text input", 0) != 0) throw;
      throw Error(e.message(), args.text_file + ": " + e.where());
    }
  } else if (doc.is_array()) {
    if (doc.empty()) throw Error("expected at least one chunk", args.inputs);
    result = json::array();
    for (std::size_t c = 0; c < doc.size(); ++c) {
      if (args.reset_between) session.reset_states();
      std::string where = args.inputs + "[" + std::to_string(c) + "]";
      result.push_back(outputs_json(model, run_call(session, call_inputs(model.manifest(), doc[c], where), where)));
    }
  } else {
    result = outputs_json(model, run_call(session, call_inputs(model.manifest(), doc, args.inputs), args.inputs));
  }
  std::string text = result.dump() + "\n";
  if (args.output.empty()) {
    std::cout << text;
  } else {
    // Written next to the target, then renamed: no half-written output file.
    std::string tmp = args.output + ".tmp";
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      if (!(out << text)) throw Error("cannot write the file", args.output);
    }
    if (std::rename(tmp.c_str(), args.output.c_str()) != 0) {
      std::remove(tmp.c_str());
      throw Error("cannot write the file", args.output);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_args(argc, argv));
  } catch (const Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "internal error: " << e.what() << "\n";
    return 3;
  }
}
