/**
 * The fonts of the rendered handwriting set of `digit-eval.ts`, kept apart from training.
 */
/**
 * Handwriting fonts kept for evaluation only (Debian packages fonts-dkg-handwriting, fonts-bwht,
 * fonts-breip, fonts-femkeklaver, fonts-humor-sans, fonts-comic-neue, fonts-kristi,
 * fonts-kaushanscript, fonts-dancingscript, fonts-leckerli-one). No training recipe reads these:
 * the digits it learns from are MNIST scans and stroke skeletons (`src/trainer/handwriting.ts`),
 * and its only rendered text, the Outlier Exposure words, is set in `WORD_FONTS`
 * (`src/trainer/outliers.ts`: DejaVu); `tests/unit/trainer/font-separation.test.ts` checks that the two stay apart.
 */
export const EVAL_FONTS: readonly { file: string; family: string }[] = [
  { file: '/usr/share/fonts/truetype/fifthhorseman/dkg.ttf', family: 'DkgHandwriting' },
  { file: '/usr/share/fonts/truetype/fifthhorseman/dkgBd.ttf', family: 'DkgHandwriting Bold' },
  { file: '/usr/share/fonts/truetype/humor-sans/Humor-Sans.ttf', family: 'Humor Sans' },
  { file: '/usr/share/fonts/truetype/kristi/Kristi.ttf', family: 'Kristi' },
  { file: '/usr/share/fonts/truetype/breip/Breip.ttf', family: 'Breip' },
  { file: '/usr/share/fonts/truetype/femkeklaver/femkeklaver.ttf', family: 'femkeklaver' },
  { file: '/usr/share/fonts/opentype/bwht/BecauseWeBuild-Regular.otf', family: 'Because We Build' },
  {
    file: '/usr/share/fonts/opentype/bwht/BecauseWeConnect-Regular.otf',
    family: 'Because We Connect',
  },
  {
    file: '/usr/share/fonts/opentype/bwht/BecauseWeCreate-Regular.otf',
    family: 'Because We Create',
  },
  { file: '/usr/share/fonts/opentype/bwht/BecauseWeLearn-Regular.otf', family: 'Because We Learn' },
  {
    file: '/usr/share/fonts/opentype/bwht/BecauseWeMentor-Regular.otf',
    family: 'Because We Mentor',
  },
  {
    file: '/usr/share/fonts/opentype/bwht/BecauseWeOrganize-Regular.otf',
    family: 'Because We Organize',
  },
  {
    file: '/usr/share/fonts/opentype/comic-neue/ComicNeue-Italic.otf',
    family: 'Comic Neue Italic',
  },
  { file: '/usr/share/fonts/opentype/comic-neue/ComicNeue-Bold.otf', family: 'Comic Neue Bold' },
  {
    file: '/usr/share/fonts/opentype/kaushanscript/KaushanScript-Regular.otf',
    family: 'Kaushan Script',
  },
  {
    file: '/usr/share/fonts/opentype/dancingscript/DancingScript-Regular.otf',
    family: 'Dancing Script',
  },
  {
    file: '/usr/share/fonts/truetype/leckerli-one/LeckerliOne-Regular.ttf',
    family: 'Leckerli One',
  },
];
