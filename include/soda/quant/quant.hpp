// Integer-only inference (shared/spec/quantization.md): dyadic requantization, int4/int8 storage,
// the spec's quantizers, the integer GEMM (scalar oracle and packed AVX2/AVX-512 VNNI kernels) and
// NHWC integer convolution; for HAWQ: fake quantization (straight-through), BatchNorm folding,
// activation calibration, per-layer sensitivities, geometry and measured latencies, the bit
// allocation (Pareto frontier, integer program), the fake-quantized ResNet for fine-tuning, and
// the integer-only CIFAR ResNet compiled from a quantized plan with its safetensors model file.
#pragma once

#include "soda/quant/batch_norm_folding.hpp"
#include "soda/quant/bit_allocation.hpp"
#include "soda/quant/calibration.hpp"
#include "soda/quant/dyadic.hpp"
#include "soda/quant/fake_quantize.hpp"
#include "soda/quant/fake_quantized_layers.hpp"
#include "soda/quant/int4.hpp"
#include "soda/quant/integer_conv2d.hpp"
#include "soda/quant/integer_gemm.hpp"
#include "soda/quant/integer_gemm_reference.hpp"
#include "soda/quant/integer_layer.hpp"
#include "soda/quant/integer_matrix.hpp"
#include "soda/quant/integer_resnet.hpp"
#include "soda/quant/integer_resnet_file.hpp"
#include "soda/quant/latency_table.hpp"
#include "soda/quant/layer_geometry.hpp"
#include "soda/quant/quantize.hpp"
#include "soda/quant/quantized_resnet.hpp"
#include "soda/quant/quantized_resnet_plan.hpp"
#include "soda/quant/residual_add.hpp"
#include "soda/quant/sensitivity.hpp"
