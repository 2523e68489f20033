// rnncompile_run: run a compiled model on inputs from a JSON file, print the outputs as JSON.
//
//   rnncompile_run OUT_DIR INPUTS.json [-o OUTPUTS.json] [--threads N] [--reset-between]
//
// INPUTS.json is {"<input name>": nested array, ...} for one call, or a list of such objects: the
// chunks of a stream, run in order on one session, so a stateful model carries its state from one
// chunk to the next (--reset-between starts every chunk from zero states instead). The output has
// the same form: {"<output name>": nested array} or a list of them. Exit status: 0 done, 2 bad input
// (the message names the file, the input and what was expected), 3 anything else.
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
    "  INPUTS.json: {\"input name\": nested array} for one call, or a list of them (chunks of a stream;\n"
    "  stateful models carry their state across chunks unless --reset-between)\n";

struct Args {
  std::string out_dir, inputs, output;
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
    } else if ((arg == "-o" || arg == "--output" || arg == "--threads") && i + 1 < argc) {
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
      } else {
        a.output = value;
      }
    } else if (!arg.empty() && arg[0] == '-') {
      throw Error(std::string("unknown option or missing value\n") + kUsage, arg);
    } else {
      positional.push_back(arg);
    }
  }
  if (positional.size() != 2) throw Error(std::string("expected OUT_DIR and INPUTS.json\n") + kUsage, "arguments");
  a.out_dir = positional[0];
  a.inputs = positional[1];
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

rnncompile::TensorMap call_inputs(const json& obj, const std::string& where) {
  if (!obj.is_object()) throw Error("expected an object {input name: array}", where);
  rnncompile::TensorMap inputs;
  for (const auto& item : obj.items())
    inputs[item.key()] = rnncompile_example::tensor_from_json(item.value(), where + "[" + item.key() + "]");
  return inputs;
}

json outputs_json(const rnncompile::Model& model, const rnncompile::TensorMap& outs) {
  json obj = json::object();
  for (const auto* spec : model.manifest().model_outputs())
    obj[spec->name] = rnncompile_example::tensor_to_json(outs.at(spec->name));
  return obj;
}

// Errors about an input name the file (and chunk) it came from.
rnncompile::TensorMap run_call(rnncompile::Session& session, const rnncompile::TensorMap& inputs,
                               const std::string& where) {
  try {
    return session.run(inputs);
  } catch (const Error& e) {
    if (e.where().rfind("input", 0) != 0) throw;
    throw Error(e.message(), where + ": " + e.where());
  }
}

int run(const Args& args) {
  json doc = read_json(args.inputs);
  rnncompile::Options options;
  options.threads = args.threads;
  rnncompile::Model model = rnncompile::Model::open(args.out_dir, options);
  rnncompile::Session session = model.session();
  json result;
  if (doc.is_array()) {
    if (doc.empty()) throw Error("expected at least one chunk", args.inputs);
    result = json::array();
    for (std::size_t c = 0; c < doc.size(); ++c) {
      if (args.reset_between) session.reset_states();
      std::string where = args.inputs + "[" + std::to_string(c) + "]";
      result.push_back(outputs_json(model, run_call(session, call_inputs(doc[c], where), where)));
    }
  } else {
    result = outputs_json(model, run_call(session, call_inputs(doc, args.inputs), args.inputs));
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
