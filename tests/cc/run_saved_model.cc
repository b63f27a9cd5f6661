// Runs signatures of a SavedModel the way TF Serving's server does: tensorflow::LoadSavedModel
// (MetaGraph into a Session, restore op, init op), then Session::Run on the SignatureDef's tensor names.
//
//   run_saved_model [--xla_cpu_compilation_enabled] EXPORT_DIR JOB_DIR...
//
// As tensorflow_model_server does, it calls tensorflow::DisableXlaCompilation() unless given
// --xla_cpu_compilation_enabled, so that a function marked for XLA fails in Session::Run.
//
// Each JOB_DIR holds a file `signature` (the signature's name) and `in/<alias>.pb`, one binary
// TensorProto per input of that signature. Each output is written to `JOB_DIR/out/<alias>.pb`; a job
// that fails writes its Status to `JOB_DIR/error` instead. Exit 0 once the model loaded (whatever the
// jobs did), 1 if it did not. Built by tests/cc_loader.py with g++ against the TensorFlow wheel.
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "tensorflow/cc/saved_model/loader.h"
#include "tensorflow/compiler/jit/flags.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor.pb.h"
#include "tensorflow/core/public/session_options.h"

namespace {

std::string ReadFile(const std::string& path, bool* ok) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  *ok = static_cast<bool>(in);
  return buffer.str();
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary);
  out << data;
}

// Runs one job; returns an empty string on success, else what went wrong.
std::string RunJob(const tensorflow::SavedModelBundle& bundle, const std::string& job) {
  bool ok = false;
  std::string signature = ReadFile(job + "/signature", &ok);
  if (!ok) return "cannot read " + job + "/signature";
  const auto& defs = bundle.meta_graph_def.signature_def();
  auto found = defs.find(signature);
  if (found == defs.end()) return "no signature " + signature;
  const tensorflow::SignatureDef& def = found->second;

  std::vector<std::pair<std::string, tensorflow::Tensor>> feeds;
  for (const auto& [alias, info] : def.inputs()) {
    tensorflow::TensorProto proto;
    if (!proto.ParseFromString(ReadFile(job + "/in/" + alias + ".pb", &ok)) || !ok) return "cannot read input " + alias;
    tensorflow::Tensor tensor;
    if (!tensor.FromProto(proto)) return "bad TensorProto for input " + alias;
    feeds.emplace_back(info.name(), tensor);
  }
  std::vector<std::string> aliases, fetches;
  for (const auto& [alias, info] : def.outputs()) {
    aliases.push_back(alias);
    fetches.push_back(info.name());
  }
  std::vector<tensorflow::Tensor> outputs;
  absl::Status status = bundle.session->Run(feeds, fetches, {}, &outputs);
  if (!status.ok()) return "Session::Run: " + status.ToString();
  for (size_t k = 0; k < outputs.size(); ++k) {
    tensorflow::TensorProto proto;
    outputs[k].AsProtoTensorContent(&proto);
    WriteFile(job + "/out/" + aliases[k] + ".pb", proto.SerializeAsString());
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  int first = 1;
  bool xla_cpu_compilation_enabled = false;
  if (argc > 1 && std::string(argv[1]) == "--xla_cpu_compilation_enabled") {
    xla_cpu_compilation_enabled = true;
    first = 2;
  }
  if (argc < first + 1) {
    std::cerr << "usage: run_saved_model [--xla_cpu_compilation_enabled] EXPORT_DIR JOB_DIR..." << std::endl;
    return 1;
  }
  if (!xla_cpu_compilation_enabled) tensorflow::DisableXlaCompilation();  // TF Serving's main.cc does the same
  tensorflow::SavedModelBundle bundle;
  absl::Status status = tensorflow::LoadSavedModel(tensorflow::SessionOptions(), tensorflow::RunOptions(),
                                                   argv[first], {"serve"}, &bundle);
  if (!status.ok()) {
    std::cerr << "LoadSavedModel: " << status.ToString() << std::endl;
    return 1;
  }
  for (int k = first + 1; k < argc; ++k) {
    std::string error = RunJob(bundle, argv[k]);
    if (!error.empty()) WriteFile(std::string(argv[k]) + "/error", error);
  }
  return 0;
}
