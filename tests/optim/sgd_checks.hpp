// Shared by the SGD tests: the quadratic problem every PyTorch reference ran, the reference
// trajectories printed by torch 1.13, and helpers to build, read and compare parameters.
#pragma once

#include <doctest/doctest.h>
#include <soda/autodiff/autodiff.hpp>
#include <soda/core/core.hpp>
#include <soda/io/safetensors.hpp>
#include <soda/optim/sgd.hpp>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <string>
#include <vector>

namespace sgd_test {

using soda::optim::SGD;
using soda::optim::SgdOptions;

// Parameters after each of five steps: p0 (2×3, row-major) then p1 (3).
using Values = std::array<double, 9>;
using Trajectory = std::array<Values, 5>;

// The problem every PyTorch reference below ran: loss = Σ ½·a·p² + b·p, so the gradient is
// a·p + b, recomputed from the current parameters before each step.
constexpr Values initial_params = {0.5, -1.25, 2.0, 0.75, -0.3, 1.1, 0.2, -0.4, 3.0};
constexpr Values curvature = {1.0, 0.5, 2.0, 0.25, 1.5, 3.0, 0.8, 1.2, 0.3};
constexpr Values offset = {0.1, -0.2, 0.3, -0.4, 0.5, -0.6, -0.5, 0.25, 0.05};

struct Reference {
  const char* torch_call;
  SgdOptions options;
  Trajectory expected;
};

// Printed by /usr/bin/python3 with torch 1.13 in float64: p0, p1 = torch.tensor(...,
// requires_grad=True); opt = <torch_call>; per step: p.grad = a * p + b (under no_grad);
// opt.step(); print(p0.flatten().tolist() + p1.tolist()).
inline const std::vector<Reference>& references() {
  static const std::vector<Reference> table = {
      {"torch.optim.SGD([p0, p1], lr=0.1)",
       {.lr = 0.1},
       {{{0.44, -1.1675, 1.57, 0.77125, -0.305, 0.8300000000000001, 0.234, -0.377, 2.905},
         {0.386, -1.089125, 1.226, 0.79196875, -0.30924999999999997, 0.641, 0.26528, -0.35676,
          2.8128499999999996},
         {0.33740000000000003, -1.0146687499999998, 0.9508, 0.81216953125, -0.3128625, 0.5087,
          0.29405760000000003, -0.3389488, 2.7234644999999995},
         {0.29366000000000003, -0.9439353124999998, 0.73064, 0.83186529296875, -0.315933125,
          0.41609, 0.320532992, -0.323274944, 2.6367605649999994},
         {0.254294, -0.8767385468749999, 0.554512, 0.8510686606445312, -0.31854315624999996,
          0.351263, 0.34489035264, -0.30948195072, 2.5526577480499997}}}},
      {"torch.optim.SGD([p0, p1], lr=0.05, momentum=0.9)",
       {.lr = 0.05, .momentum = 0.9},
       {{{0.47, -1.20875, 1.785, 0.760625, -0.3025, 0.9650000000000001, 0.217, -0.3885, 2.9525},
         {0.4145, -1.13140625, 1.398, 0.7806796875, -0.3070625, 0.72875, 0.24862, -0.36734,
          2.8629625},
         {0.338825, -1.02351171875, 0.8948999999999999, 0.80897041015625, -0.3131390625,
          0.43681249999999994, 0.29213320000000004, -0.3387556, 2.7369343125},
         {0.24877624999999998, -0.89081884765625, 0.33761999999999986, 0.8443199304199219,
          -0.3201225390625, 0.13854687499999985, 0.34460975200000005, -0.305204304,
          2.5799549290624997},
         {0.15029356249999998, -0.7391247924804687, -0.2126940000000002, 0.8855804995269776,
          -0.3273984775390625, -0.12067421875000021, 0.40305425872000006, -0.26919587936,
          2.397474160032812}}}},
      {"torch.optim.SGD([p0, p1], lr=0.05, momentum=0.9, dampening=0.5)",
       {.lr = 0.05, .momentum = 0.9, .dampening = 0.5},
       {{{0.47, -1.20875, 1.785, 0.760625, -0.3025, 0.9650000000000001, 0.217, -0.3885, 2.9525},
         {0.42874999999999996, -1.151515625, 1.49475, 0.77543359375, -0.30590625,
          0.7861250000000001, 0.24046, -0.372745, 2.88635625},
         {0.37840624999999994, -1.0806107421875, 1.1512875, 0.7939148681640625, -0.310000390625,
          0.581178125, 0.2692648, -0.35363315, 2.803929203125},
         {0.32113671874999994, -0.9982887133789062, 0.777106875, 0.8155860472106934,
          -0.3145601025390625, 0.368137578125, 0.30230382400000005, -0.3320734905,
          2.7074653919140625},
         {0.25906572265624994, -0.9067202785339356, 0.39398896874999995, 0.8399926955575944,
          -0.31936783941650393, 0.16379076757812497, 0.33849286912000004, -0.308957592235,
          2.5990919713848633}}}},
      {"torch.optim.SGD([p0, p1], lr=0.05, momentum=0.8, nesterov=True)",
       {.lr = 0.05, .momentum = 0.8, .nesterov = true},
       {{{0.446, -1.17575, 1.613, 0.7691250000000001, -0.3045, 0.8570000000000001, 0.2306, -0.3793,
          2.9145},
         {0.37766, -1.07844125, 1.15806, 0.7946196875000001, -0.3099925, 0.59321,
          0.26987680000000003, -0.3534756, 2.8009085},
         {0.3018386, -0.96557939375, 0.6996972, 0.8248277445312501, -0.3158075125,
          0.35485130000000004, 0.31424631040000006, -0.3253471152, 2.6668847705},
         {0.224122406, -0.84340766103125, 0.28470626400000004, 0.858381762779297, -0.3214250583125,
          0.16953968900000002, 0.36075224197120004, -0.2971736677184, 2.5187708000964997},
         {0.14885197826, -0.7170285179848437, -0.057557836319999965, 0.8941596651605128,
          -0.3264751628403125, 0.04809684016999999, 0.40703870773903367, -0.27065681514913276,
          2.361775429417094}}}},
      {"torch.optim.SGD([p0, p1], lr=0.1, weight_decay=0.01)",
       {.lr = 0.1, .weight_decay = 0.01},
       {{{0.4395, -1.16625, 1.568, 0.7705, -0.30469999999999997, 0.8289000000000001, 0.2338,
          -0.37660000000000005, 2.902},
         {0.3851105, -1.08677125, 1.2228320000000001, 0.7904669999999999, -0.3086903,
          0.6394011000000001, 0.2648622, -0.35603140000000005, 2.807038},
         {0.3362143395, -1.01134591625, 0.9470427680000001, 0.809914858, -0.3120780647,
          0.5069413689000001, 0.2934083618, -0.33795160060000007, 2.715019822},
         {0.2922566912105, -0.93976727452125, 0.726687171632, 0.828857071692, -0.3149542769303,
          0.41435201686110007, 0.3196422844942, -0.32205945692740007, 2.625854207518},
         {0.25273876539823953, -0.8718391435206663, 0.5506230501339681, 0.847306787828008,
          -0.31739618111382467, 0.34963205978590894, 0.3437512594501698, -0.30809026263918465,
          2.539452727084942}}}},
      {"torch.optim.SGD([p0, p1], lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.05)",
       {.lr = 0.05, .momentum = 0.9, .dampening = 0.1, .weight_decay = 0.05},
       {{{0.46875, -1.205625, 1.78, 0.75875, -0.30175, 0.96225, 0.2165, -0.3875, 2.945},
         {0.4139765625, -1.12684828125, 1.404295, 0.774381875, -0.30477793750000004, 0.7332061875,
          0.245568875, -0.365703125, 2.8468662499999997},
         {0.34062007617187495, -1.0190597394140626, 0.92311428625, 0.7959964071875,
          -0.30874482010937504, 0.453434207015625, 0.28483785303125, -0.33676513671875,
          2.7114577315624997},
         {0.2540049398774414, -0.8878283232112207, 0.3913943509684375, 0.8227035346592187,
          -0.31328006325518365, 0.1664055796667929, 0.33178488538092965, -0.3030279083251953,
          2.5446346056966402},
         {0.15954958380324205, -0.7387462976291854, -0.13675971966180717, 0.8536334516658661,
          -0.3180104976743623, -0.08775935075642334, 0.3838464426298208, -0.2668690829277039,
          2.3521657973776446}}}},
      {"torch.optim.SGD([p0, p1], lr=0.05, momentum=0.7, nesterov=True, weight_decay=0.1)",
       {.lr = 0.05, .momentum = 0.7, .weight_decay = 0.1, .nesterov = true},
       {{{0.44475, -1.16925, 1.6175, 0.7616875, -0.30169999999999997, 0.8611500000000001, 0.2272,
          -0.37705000000000005, 2.89375},
         {0.378740875, -1.06934325, 1.19302625, 0.776396046875, -0.30365879999999995,
          0.6163919750000001, 0.26015920000000003, -0.35002097500000007, 2.7604875},
         {0.3092450906875, -0.95942626925, 0.786825689375, 0.7929249191679687, -0.30562756319999995,
          0.4060768470875001, 0.2954852612, -0.32207911476250006, 2.611359675},
         {0.24126514937696875, -0.84600985124325, 0.4347243407590625, 0.8104164650020185,
          -0.30744524164479997, 0.24873353762869382, 0.3308038963582, -0.2953560247774938,
          2.45433079355},
         {0.17802683498431907, -0.7336198078793693, 0.15348679007147611, 0.8282639875118509,
          -0.3090202072316672, 0.14711127175136238, 0.3645282286253377, -0.2711676207717701,
          2.2950223650043}}}},
  };
  return table;
}

inline const Reference& reference(const char* torch_call) {
  for (const auto& r : references()) {
    if (std::string(r.torch_call) == torch_call) return r;
  }
  FAIL("no reference for " << torch_call);
  return references().front();
}

// torch.optim.SGD([p0, p1], lr=0.05, momentum=0.9) with opt.param_groups[0]['lr'] = 0.01 set
// before step 3: the buffers carry unscaled directions, so the new rate applies at once.
constexpr Trajectory lr_change_expected = {{
    {0.47, -1.20875, 1.785, 0.760625, -0.3025, 0.9650000000000001, 0.217, -0.3885, 2.9525},
    {0.4145, -1.13140625, 1.398, 0.7806796875, -0.3070625, 0.72875, 0.24862, -0.36734, 2.8629625},
    {0.39936499999999997, -1.10982734375, 1.29738, 0.7863378320312501, -0.3082778125, 0.6703625,
     0.25732264, -0.36162312, 2.8377568625},
    {0.38074984999999995, -1.08285719140625, 1.1778743999999999, 0.7934643175292969,
     -0.30974742656250004, 0.603702875, 0.26809643488, -0.35463845056000004, 2.8060585181625},
    {0.35918871649999995, -1.0511697683398438, 1.043761872, 0.8018944936837159,
     -0.31142386782031256, 0.5315981262499999, 0.28064807879296, -0.34659658665728005,
     2.768611832704263},
}};

// torch.optim.SGD([p0, p1], lr=0.05, momentum=0.9, weight_decay=0.01) with p1.grad = None at
// step 2: p1 and its momentum buffer are left alone that step.
constexpr Trajectory skip_expected = {{
    {0.46975, -1.208125, 1.784, 0.76025, -0.30235, 0.96445, 0.2169, -0.38830000000000003, 2.951},
    {0.413802625, -1.1296303124999998, 1.395308, 0.77959175, -0.306637575, 0.727305275, 0.2169,
     -0.38830000000000003, 2.951},
    {0.3375529549375, -1.0201795207812498, 0.890256746, 0.80686463225, -0.3123452555875,
     0.43441557861249996, 0.24832555, -0.36677785, 2.8586595},
    {0.24688182765690622, -0.8856592304544529, 0.331239814427, 0.84092098605575,
     -0.3189001013193937, 0.13543530728256864, 0.291551360225, -0.337717855075, 2.72874382775},
    {0.1478102808076981, -0.7320066587837472, -0.22016502533861357, 0.8806397316622003,
     -0.32572250482848386, -0.12402995066039615, 0.3436467593383875, -0.3036319294104625,
     2.5670241933948748},
}};
constexpr SgdOptions skip_options{.lr = 0.05, .momentum = 0.9, .weight_decay = 0.01};

// The values of any view in row-major order.
template <class T>
std::vector<T> values_of(const soda::Tensor<T>& t) {
  std::vector<T> out;
  if (t.ndim() == 1) {
    for (std::int64_t i = 0; i < t.size(0); ++i) out.push_back(t.at({i}));
  } else {
    for (std::int64_t i = 0; i < t.size(0); ++i) {
      for (std::int64_t j = 0; j < t.size(1); ++j) out.push_back(t.at({i, j}));
    }
  }
  return out;
}

template <class T>
soda::Tensor<T> tensor_of(const soda::Shape& shape, const double* values) {
  std::vector<T> v(static_cast<std::size_t>(soda::numel(shape)));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<T>(values[i]);
  return soda::Tensor<T>(shape, v);
}

// p0 [2, 3] and p1 [3] with their coefficients a, b.
template <class T>
struct Quadratic {
  soda::Tensor<T> p0 = tensor_of<T>({2, 3}, initial_params.data());
  soda::Tensor<T> p1 = tensor_of<T>({3}, initial_params.data() + 6);
  soda::Tensor<T> a0 = tensor_of<T>({2, 3}, curvature.data());
  soda::Tensor<T> a1 = tensor_of<T>({3}, curvature.data() + 6);
  soda::Tensor<T> b0 = tensor_of<T>({2, 3}, offset.data());
  soda::Tensor<T> b1 = tensor_of<T>({3}, offset.data() + 6);

  std::vector<soda::Tensor<T>> params() const { return {p0, p1}; }

  // a·p + b as fresh contiguous tensors, as soda::value_and_grad would hand them over.
  static soda::Tensor<T> gradient(const soda::Tensor<T>& p, const soda::Tensor<T>& a,
                                  const soda::Tensor<T>& b) {
    const auto pv = values_of(p), av = values_of(a), bv = values_of(b);
    std::vector<T> g(pv.size());
    for (std::size_t i = 0; i < g.size(); ++i) g[i] = av[i] * pv[i] + bv[i];
    return soda::Tensor<T>(p.shape(), g);
  }
  std::vector<soda::Tensor<T>> gradients() const {
    return {gradient(p0, a0, b0), gradient(p1, a1, b1)};
  }

  // The differentiable loss for soda::backward; its gradient is a·p + b up to rounding.
  soda::Tensor<T> loss(bool with_p1 = true) const {
    auto l = soda::sum(a0 * p0 * p0 * T(0.5) + b0 * p0);
    if (with_p1) l = l + soda::sum(a1 * p1 * p1 * T(0.5) + b1 * p1);
    return l;
  }

  Values values() const {
    Values out{};
    const auto v0 = values_of(p0), v1 = values_of(p1);
    for (std::size_t i = 0; i < 6; ++i) out[i] = static_cast<double>(v0[i]);
    for (std::size_t i = 0; i < 3; ++i) out[6 + i] = static_cast<double>(v1[i]);
    return out;
  }
};

// Agreement up to the rounding of the two implementations (PyTorch fuses some multiply-adds).
inline void check_values(const Values& got, const Values& expected, double tolerance, int step) {
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("after step " << step << ", value " << i << ": " << got[i] << " vs PyTorch "
                       << expected[i]);
    CHECK(std::abs(got[i] - expected[i]) <= tolerance * std::max(1.0, std::abs(expected[i])));
  }
}

template <class T>
bool same_bits(const soda::Tensor<T>& a, const soda::Tensor<T>& b) {
  const auto va = values_of(a), vb = values_of(b);
  return a.shape() == b.shape() && std::memcmp(va.data(), vb.data(), va.size() * sizeof(T)) == 0;
}

// Restores the OpenMP thread count on scope exit.
class ThreadCount {
 public:
  explicit ThreadCount(int n) : previous_(soda::max_threads()) { soda::set_num_threads(n); }
  ~ThreadCount() { soda::set_num_threads(previous_); }
  ThreadCount(const ThreadCount&) = delete;
  ThreadCount& operator=(const ThreadCount&) = delete;

 private:
  int previous_;
};

}  // namespace sgd_test
